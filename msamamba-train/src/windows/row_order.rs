//! The rows a model was trained with, found by name in whatever source it is later given: its
//! row embeddings are by position, so row i must hold the species it learnt in row i.

use anyhow::{Result, bail};
use msamamba_model::tokens::GAP;

/// Where each of a model's rows comes from in a source's windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOrder {
    /// Per model row, the source row holding its species; `None` for a species the source
    /// lacks, which reads as gaps (as a species missing from an alignment block does).
    from: Vec<Option<usize>>,
    /// The species of each row.
    species: Vec<String>,
}

impl RowOrder {
    /// The order of `trained` (the model's species, target first) in a source whose windows have
    /// rows `present` (target first). Row 0 is the source's target whatever its name (a model
    /// may score another target); a species the source lacks becomes a gap row, with a warning.
    /// A model saved without its species (before they were recorded) takes the source's first
    /// `max_rows` rows, with a warning when that drops some.
    pub fn new(trained: &[String], present: &[String], max_rows: usize) -> Result<Self> {
        if trained.len() > max_rows {
            bail!(
                "{} rows ({}) but the model takes at most {max_rows}",
                trained.len(),
                trained.join(",")
            );
        }
        if trained.is_empty() {
            if present.len() > max_rows {
                tracing::warn!(
                    "the checkpoint does not record its species; using the source's first {max_rows} of {} rows",
                    present.len()
                );
            }
            let rows = present.len().min(max_rows);
            return Ok(Self {
                species: present[..rows].to_vec(),
                ..Self::first(rows)
            });
        }
        let from: Vec<Option<usize>> = std::iter::once(Some(0))
            .chain(trained[1..].iter().map(|name| present.iter().position(|p| p == name)))
            .collect();
        let missing: Vec<&str> = trained
            .iter()
            .zip(&from)
            .filter(|(_, from)| from.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if !missing.is_empty() {
            tracing::warn!(
                "the source lacks species the model was trained with; their rows are gaps: {}",
                missing.join(",")
            );
        }
        let species = present.iter().take(1).chain(&trained[1..]).cloned().collect();
        Ok(Self { from, species })
    }

    /// The first `rows` rows of whatever a source gives, in its order, gap rows after its last:
    /// pre-training's order, where the model learns the source's rows as they come.
    pub fn first(rows: usize) -> Self {
        Self {
            from: (0..rows).map(Some).collect(),
            species: Vec::new(),
        }
    }

    /// The species of each row, target (the source's) first; none for [`RowOrder::first`],
    /// which takes rows by position.
    pub fn species(&self) -> &[String] {
        &self.species
    }

    /// Rows M of every window.
    pub fn len(&self) -> usize {
        self.from.len()
    }

    /// Whether the model has no rows.
    pub fn is_empty(&self) -> bool {
        self.from.is_empty()
    }

    /// Which of the model's rows a source window of `rows` rows fills (false: a gap row).
    pub fn filled(&self, rows: usize) -> Vec<bool> {
        self.from.iter().map(|from| from.is_some_and(|r| r < rows)).collect()
    }

    /// A source window's `rows` (target first) in the model's order: the one place where rows
    /// are padded to the model's M (with gap rows) or cut to it.
    pub fn arrange(&self, rows: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let len = rows.first().map_or(0, Vec::len);
        self.from
            .iter()
            .map(|from| {
                from.and_then(|r| rows.get(r))
                    .cloned()
                    .unwrap_or_else(|| vec![GAP; len])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        list.split(',').map(String::from).collect()
    }

    #[test]
    fn rows_are_found_by_name_and_missing_species_are_gaps() {
        let order = RowOrder::new(&names("mm9,rn4,hg18,canFam2"), &names("mm9,hg18,panTro2,rn4"), 4).unwrap();
        let rows = vec![vec![1, 1], vec![2, 2], vec![3, 3], vec![4, 4]];
        // mm9, rn4 (source row 3), hg18 (row 1), canFam2 (absent).
        assert_eq!(
            order.arrange(&rows),
            [vec![1, 1], vec![4, 4], vec![2, 2], vec![GAP, GAP]]
        );
        assert_eq!(order.species(), names("mm9,rn4,hg18,canFam2"));
    }

    #[test]
    fn the_first_rows_are_cut_or_padded_with_gaps() {
        let rows = vec![vec![1, 1], vec![2, 2]];
        assert_eq!(
            RowOrder::first(3).arrange(&rows),
            [vec![1, 1], vec![2, 2], vec![GAP, GAP]]
        );
        assert_eq!(RowOrder::first(3).filled(rows.len()), [true, true, false]);
        assert_eq!(RowOrder::first(1).arrange(&rows), [vec![1, 1]]);
        assert_eq!(RowOrder::first(1).filled(rows.len()), [true]);
    }

    #[test]
    fn more_rows_than_the_model_takes_are_refused() {
        let err = RowOrder::new(&names("mm9,rn4,hg18"), &names("mm9,rn4,hg18"), 2).unwrap_err();
        assert!(
            err.to_string()
                .contains("3 rows (mm9,rn4,hg18) but the model takes at most 2"),
            "{err}"
        );
    }
}
