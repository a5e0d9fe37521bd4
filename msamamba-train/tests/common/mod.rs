//! Helpers shared by the integration tests.
// Each test file uses some of them; the rest would warn as dead code there.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a bundled real-data file under `data/maf/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/maf").join(name)
}

/// A fresh, empty scratch directory for one test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msamamba-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Gzip-compresses `data` into one gzip member.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Every float parameter of `module`, in visiting order, as flat values.
pub fn float_params<B: burn::prelude::Backend, M: burn::module::Module<B>>(module: &M) -> Vec<Vec<f32>> {
    use burn::module::{ModuleVisitor, Param};
    use burn::prelude::Tensor;
    struct Values(Vec<Vec<f32>>);
    impl<B: burn::prelude::Backend> ModuleVisitor<B> for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0
                .push(param.val().into_data().convert::<f32>().to_vec().expect("f32 values"));
        }
    }
    let mut values = Values(Vec::new());
    module.visit(&mut values);
    values.0
}
