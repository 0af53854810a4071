//! The `kv` workload as a wasi:http proxy component.
edgebench_workload_wasi_http::workload_component!(edgebench_workload_core::Workload::Kv);
