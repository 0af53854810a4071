//! The `wasi:http` adapter: turns an incoming-handler call into a core
//! [`Request`](edgebench_workload_core::Request) and writes the response back.
//!
//! Hosts of this world (embedded Wasmtime, `wasmtime serve`, wasmCloud) give
//! each request a fresh instance, so `kv` keeps its state in the preopened
//! directory [`KV_DIR`] rather than in memory.

/// Where `kv` keeps its state: a directory the host preopens.
pub const KV_DIR: &str = "/data";

#[cfg(target_os = "wasi")]
mod adapter;
#[cfg(target_os = "wasi")]
pub use adapter::serve;

/// Declares the component for one workload (used by each `src/bin` file).
#[macro_export]
macro_rules! workload_component {
    ($workload:expr) => {
        #[cfg(target_os = "wasi")]
        mod component {
            struct Component;
            impl wasi::exports::http::incoming_handler::Guest for Component {
                fn handle(request: wasi::http::types::IncomingRequest, out: wasi::http::types::ResponseOutparam) {
                    $crate::serve($workload, request, out)
                }
            }
            wasi::http::proxy::export!(Component);
        }

        fn main() {
            #[cfg(not(target_os = "wasi"))]
            eprintln!("this is a wasi:http component: build it for wasm32-wasip2");
        }
    };
}
