//! A device that fails is an error, not a panic on a thread nobody reads: an allocation past the
//! memory pool's largest page, which the runtime refuses on its runner thread, comes back from
//! `device_failure::check` as out of memory, with its size; on WGPU (the `wgpu` feature) and on
//! CUDA (`cuda`).

use burn::tensor::Tensor;
use msamamba_kernels::device_failure;

/// The tests, instantiated per GPU backend.
macro_rules! gpu_tests {
    ($name:ident, $runtime:ty, $bool:ty) => {
        mod $name {
            use super::*;
            type Cube = burn_cubecl::CubeBackend<$runtime, f32, i32, $bool>;

            #[test]
            fn an_allocation_past_the_largest_page_is_reported_as_out_of_memory() {
                device_failure::watch();
                let device = Default::default();
                let fine = Tensor::<Cube, 1>::ones([7], &device);
                assert_eq!(fine.sum().into_scalar(), 7.0);
                assert_eq!(device_failure::check::<Cube>(&device), Ok(()));
                let client = <$runtime as cubecl::Runtime>::client(&device);
                let page = client.properties().memory.max_page_size;
                let elements = (page / 4 + 1024) as usize;
                let too_big = Tensor::<Cube, 1>::empty([elements], &device);
                let failure = device_failure::check::<Cube>(&device).expect_err("the allocation failed");
                assert!(failure.out_of_memory(), "{failure}");
                assert!(
                    failure.reason.contains(&(elements * 4).to_string()),
                    "the size is named: {failure}"
                );
                drop(too_big);
            }
        }
    };
}

#[cfg(feature = "wgpu")]
gpu_tests!(wgpu, cubecl::wgpu::WgpuRuntime, u32);
#[cfg(feature = "cuda")]
gpu_tests!(cuda, cubecl::cuda::CudaRuntime, u8);
