use crate::engine::engine;
use hyper::server::conn::http1;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::Store;
use wasmtime::{bail, format_err as anyhow, Result};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub struct Options {
    component: String,
    addr: String,
    dir: Option<(String, String)>,
    slots: u32,
    threads: usize,
    /// Serve the tenant API (`/_edgebench/tenants/NAME`, see [`Host::tenant_api`]).
    tenant_api: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            component: String::new(),
            addr: "127.0.0.1:8080".into(),
            dir: None,
            slots: 64,
            threads: 1,
            tenant_api: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(|| anyhow!("{arg} needs a value"));
            match arg.as_str() {
                "--addr" => options.addr = value()?,
                "--dir" => {
                    let v = value()?;
                    let (host, guest) =
                        v.split_once("::").ok_or_else(|| anyhow!("--dir takes HOST::GUEST, got {v:?}"))?;
                    options.dir = Some((host.into(), guest.into()));
                }
                "--pool" => options.slots = value()?.parse::<u32>().context("--pool takes a number")?,
                "--threads" => options.threads = value()?.parse::<usize>().context("--threads takes a number")?,
                "--tenant-api" => options.tenant_api = true,
                a if a.starts_with("--") => bail!("unknown option {a}"),
                a => options.component = a.into(),
            }
        }
        if options.component.is_empty() {
            bail!("serve needs a precompiled component (.cwasm)");
        }
        Ok(options)
    }
}

/// Many tenants in one process: the component given at start answers every
/// request whose `Host` names no tenant; each tenant added through the
/// tenant API answers the requests whose `Host` is its name. Every request
/// gets a fresh instance of its tenant's component.
struct Host {
    pre: ProxyPre<RequestState>,
    dir: Option<(String, String)>,
    linker: Linker<RequestState>,
    tenants: std::sync::RwLock<HashMap<String, ProxyPre<RequestState>>>,
    tenant_api: bool,
}

const TENANT_API: &str = "/_edgebench/tenants/";

struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingRequests,
    table: ResourceTable,
}

/// No workload makes outgoing requests. The host is built without
/// wasi-http's client (rustls and ring, C code for the musl target), so a
/// guest that sends one gets `HttpRequestDenied`.
struct NoOutgoingRequests;

type OutgoingResult = wasmtime_wasi_http::Result<()>;
type OutgoingFuture = Box<dyn std::future::Future<Output = OutgoingResult> + Send>;

impl WasiHttpHooks for NoOutgoingRequests {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: OutgoingFuture,
    ) -> Box<
        dyn std::future::Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, OutgoingFuture)>> + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

pub fn main(options: Options, started: Instant, main_mono_ns: u128) -> Result<()> {
    // Listening comes first: the kernel completes the first connections
    // while the component loads, and the first request waits in its socket
    // instead of the client retrying refused connects.
    let listener =
        std::net::TcpListener::bind(&options.addr).with_context(|| format!("cannot listen on {}", options.addr))?;
    listener.set_nonblocking(true)?;
    let t_listen = started.elapsed();
    let engine = engine(options.slots)?;
    let t_engine = started.elapsed();
    // SAFETY: the file is our own `compile` output for this engine
    // configuration; Wasmtime checks the header and engine settings.
    let component = unsafe { Component::deserialize_file(&engine, &options.component) }
        .with_context(|| format!("loading {}", options.component))?;
    let t_load = started.elapsed();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    let t_pre = started.elapsed();

    let runtime = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(options.threads).enable_all().build()?
    };
    let t_runtime = started.elapsed();
    let host =
        Arc::new(Host { pre, dir: options.dir, linker, tenants: Default::default(), tenant_api: options.tenant_api });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let t_serve = started.elapsed();
        eprintln!(
            "edgebench-host-ready {{\"main_mono_ns\":{main_mono_ns},\"engine_ns\":{},\"load_ns\":{},\"pre_ns\":{},\"runtime_ns\":{},\"listen_ns\":{},\"serve_ns\":{}}}",
            t_engine.as_nanos(),
            t_load.as_nanos(),
            t_pre.as_nanos(),
            t_runtime.as_nanos(),
            t_listen.as_nanos(),
            t_serve.as_nanos()
        );
        loop {
            let (client, _) = listener.accept().await?;
            let _ = client.set_nodelay(true);
            let host = host.clone();
            tokio::task::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let host = host.clone();
                    async move { host.handle(req).await }
                });
                let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(client), service).await;
            });
        }
    })
}

impl Host {
    fn new_state(&self) -> Result<RequestState> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        if let Some((host_dir, guest_dir)) = &self.dir {
            wasi.preopened_dir(host_dir, guest_dir, FsPerms::ReadWrite)?;
        }
        Ok(RequestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingRequests,
            table: ResourceTable::new(),
        })
    }

    async fn handle(&self, req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<HyperOutgoingBody>> {
        let start = Instant::now();
        if self.tenant_api {
            if let Some(name) = req.uri().path().strip_prefix(TENANT_API) {
                let name = name.to_string();
                return self.tenant_api(req, &name).await;
            }
        }
        let pre = self.tenant_of(&req);
        let mut store = Store::new(pre.engine(), self.new_state()?);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let (inst_tx, inst_rx) = tokio::sync::oneshot::channel();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            let _ = inst_tx.send(start.elapsed());
            proxy.wasi_http_incoming_handler().call_handle(store, req, out).await
        });
        match receiver.await {
            Ok(Ok(mut resp)) => {
                let handled = start.elapsed();
                let instantiated = inst_rx.await.unwrap_or_default();
                let headers = resp.headers_mut();
                headers.insert("x-edgebench-instantiate-ns", (instantiated.as_nanos() as u64).into());
                headers.insert("x-edgebench-handle-ns", (handled.as_nanos() as u64).into());
                Ok(resp)
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                let e = match task.await {
                    Ok(Ok(())) => anyhow!("guest never set a response"),
                    Ok(Err(e)) => e,
                    Err(e) => e.into(),
                };
                Err(e.context("guest never set a response"))
            }
        }
    }

    /// The tenant the request's `Host` (without its port) names, else the
    /// component given at start.
    fn tenant_of(&self, req: &hyper::Request<hyper::body::Incoming>) -> ProxyPre<RequestState> {
        let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        let tenants = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        tenants.get(name).cloned().unwrap_or_else(|| self.pre.clone())
    }

    /// `PUT /_edgebench/tenants/NAME` with a precompiled component's path as
    /// its body loads and links it as tenant NAME (answers `201` and the
    /// load time in `x-edgebench-load-ns`); `DELETE` removes NAME. Enabled by
    /// `--tenant-api` only: edgebench's density experiment drives it.
    async fn tenant_api(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        name: &str,
    ) -> Result<hyper::Response<HyperOutgoingBody>> {
        use http_body_util::BodyExt;
        let method = req.method().clone();
        let body = req.into_body().collect().await?.to_bytes();
        let (status, text, load_ns) = match method {
            http::Method::PUT if !name.is_empty() => {
                let path = String::from_utf8_lossy(&body).trim().to_string();
                let start = Instant::now();
                match self.load_tenant(&path) {
                    Ok(pre) => {
                        self.tenants.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), pre);
                        (201, format!("tenant {name} serves {path}\n"), Some(start.elapsed()))
                    }
                    Err(e) => (400, format!("tenant {name}: {e:#}\n"), None),
                }
            }
            http::Method::DELETE => match self.tenants.write().unwrap_or_else(|e| e.into_inner()).remove(name) {
                Some(_) => (200, format!("tenant {name} removed\n"), None),
                None => (404, format!("no tenant {name}\n"), None),
            },
            _ => (405, "PUT a component's path to add a tenant, DELETE to remove it\n".to_string(), None),
        };
        let mut resp = hyper::Response::builder().status(status);
        if let Some(ns) = load_ns {
            resp = resp.header("x-edgebench-load-ns", ns.as_nanos() as u64);
        }
        let body =
            http_body_util::Full::new(hyper::body::Bytes::from(text)).map_err(|never| match never {}).boxed_unsync();
        Ok(resp.body(body)?)
    }

    fn load_tenant(&self, path: &str) -> Result<ProxyPre<RequestState>> {
        // SAFETY: as at start: a file our precompiler wrote for this engine
        // configuration; Wasmtime checks its header and settings.
        let component = unsafe { Component::deserialize_file(self.pre.engine(), path) }
            .with_context(|| format!("loading {path}"))?;
        ProxyPre::new(self.linker.instantiate_pre(&component)?)
    }
}
