//! Charts of a run: the loss curves of training and the ROC curve of a classifier.

pub mod loss_curve;
pub mod plot;
pub mod roc_curve;
