use edgebench_workload_core::{handle, DirStore, Request, Workload};
use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::StreamError;

const MAX_BODY: usize = 1024 * 1024;

pub fn serve(workload: Workload, request: IncomingRequest, out: ResponseOutparam) {
    let method = match request.method() {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Other(m) => m,
        other => format!("{other:?}").to_uppercase(),
    };
    let target = request.path_with_query().unwrap_or_else(|| "/".to_string());
    let body = read_body(&request).unwrap_or_default();
    let store = DirStore(crate::KV_DIR.into());
    let response = handle(workload, &Request { method: &method, target: &target, body: &body }, &store);

    let headers = Fields::from_list(&[
        ("content-type".to_string(), response.content_type.as_bytes().to_vec()),
        ("content-length".to_string(), response.body.len().to_string().into_bytes()),
    ])
    .expect("static header names are valid");
    let outgoing = OutgoingResponse::new(headers);
    outgoing.set_status_code(response.status).expect("status codes come from the core");
    let body = outgoing.body().expect("body is taken once");
    ResponseOutparam::set(out, Ok(outgoing));
    {
        let stream = body.write().expect("stream is taken once");
        // blocking_write_and_flush takes at most 4096 bytes per call.
        for chunk in response.body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}

fn read_body(request: &IncomingRequest) -> Option<Vec<u8>> {
    let incoming = request.consume().ok()?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().ok()?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(bytes) => {
                    body.extend_from_slice(&bytes);
                    if body.len() > MAX_BODY {
                        return None;
                    }
                }
                Err(StreamError::Closed) => break,
                Err(_) => return None,
            }
        }
    }
    IncomingBody::finish(incoming);
    Some(body)
}
