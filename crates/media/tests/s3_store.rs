//! `S3Store` tests against a moto S3 server that this test binary starts on
//! 127.0.0.1, each test in its own bucket.
//!
//! moto must be installed (`python3 -m pip install 'moto[server]'`). Without
//! it every test fails with a message that gives the install command.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream;
use proofsheet_config::{MediaStoreConfig, S3Config, Secret};
use proofsheet_media::{ByteStream, MediaStore, S3_PART_SIZE, S3Store, StoreError, open_store};

const KEY: &str = "tenants/t1/projects/p1/photos/ph1/original";
const MIB: usize = 1024 * 1024;

/// A moto server process, kept for the life of the test binary.
struct MotoServer {
    port: u16,
    /// The wrapper shell kills moto when this pipe closes, which happens when
    /// the test binary exits, so no server outlives the tests.
    _process: Child,
}

static SERVER: OnceLock<MotoServer> = OnceLock::new();

/// Returns the port of the moto server, starting it on first use.
///
/// # Panics
///
/// When moto cannot be started or does not accept connections within 30 s.
fn moto_port() -> u16 {
    SERVER.get_or_init(start_moto).port
}

fn start_moto() -> MotoServer {
    let import = Command::new("python3")
        .args(["-c", "import moto.server"])
        .output();
    match import {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "moto is not installed, so the S3 store tests cannot start their S3 server. \
             Install it with `python3 -m pip install 'moto[server]'` (CI runs \
             .ci/ensure-services.sh for this). python3 output:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => {
            panic!("python3, which runs the moto S3 server, could not be started: {error}")
        }
    }

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1");
    let log_path = std::env::temp_dir().join(format!("moto-s3-test-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("moto log file in the temporary folder");

    // The shell runs moto in the background and kills it once its standard
    // input reaches end of file, which is when the test binary exits.
    let script =
        r#"python3 -m moto.server -H 127.0.0.1 -p "$0" & server=$!; read -r _; kill "$server""#;
    let process = Command::new("bash")
        .args(["-c", script, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("bash to start the moto S3 server");

    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            panic!("{}", moto_failure(port, &log_path));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    MotoServer {
        port,
        _process: process,
    }
}

fn moto_failure(port: u16, log_path: &PathBuf) -> String {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    format!(
        "the moto S3 server did not start on 127.0.0.1:{port} within 30 s. \
         Install it with `python3 -m pip install 'moto[server]'` (CI runs \
         .ci/ensure-services.sh for this). Server output:\n{log}"
    )
}

/// Sends one unsigned HTTP request to moto, which accepts them by default,
/// and returns the status code and body.
fn moto_request(method: &str, target: &str) -> (u16, String) {
    let port = moto_port();
    let mut connection = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    connection
        .write_all(request.as_bytes())
        .expect("send the request to moto");
    let mut response = String::new();
    connection
        .read_to_string(&mut response)
        .expect("read the response from moto");

    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Returns the text of every `<{tag}>` element in `xml`.
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|rest| {
            rest.split_once(close.as_str())
                .map(|(text, _)| text.to_owned())
        })
        .collect()
}

/// Lists every object key in `bucket`, bypassing the store under test.
fn bucket_keys(bucket: &str) -> Vec<String> {
    let (status, body) = moto_request("GET", &format!("/{bucket}?list-type=2"));
    assert_eq!(status, 200, "listing bucket {bucket} failed: {body}");
    let mut keys = elements(&body, "Key");
    keys.sort();
    keys
}

/// Lists the ids of multipart uploads in `bucket` that were neither completed
/// nor aborted.
fn pending_uploads(bucket: &str) -> Vec<String> {
    let (status, body) = moto_request("GET", &format!("/{bucket}?uploads"));
    assert_eq!(
        status, 200,
        "listing uploads of bucket {bucket} failed: {body}"
    );
    elements(&body, "UploadId")
}

static NEXT_BUCKET: AtomicU32 = AtomicU32::new(0);

fn s3_config(bucket: &str) -> S3Config {
    let endpoint = format!("http://127.0.0.1:{}", moto_port());
    S3Config {
        bucket: bucket.to_owned(),
        endpoint: Some(url::Url::parse(&endpoint).expect("endpoint URL")),
        region: "us-east-1".to_owned(),
        access_key_id: "testing".to_owned(),
        secret_access_key: Secret::new("testing"),
        allow_http: true,
    }
}

/// Creates a new, empty bucket and a store on it.
fn new_store() -> S3Store {
    let id = NEXT_BUCKET.fetch_add(1, Ordering::Relaxed);
    let bucket = format!("media-test-{}-{id}", std::process::id());
    let (status, body) = moto_request("PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "creating bucket {bucket} failed: {body}");
    S3Store::new(&s3_config(&bucket)).expect("S3 store")
}

fn chunks(parts: &[&'static [u8]]) -> ByteStream<'static> {
    let items: Vec<Result<Bytes, io::Error>> = parts
        .iter()
        .map(|part| Ok(Bytes::from_static(part)))
        .collect();
    stream::iter(items).boxed()
}

/// Returns `count` chunks of 1 MiB, each filled with its index.
fn mib_chunks(count: usize) -> Vec<Result<Bytes, io::Error>> {
    (0..count)
        .map(|index| Ok(Bytes::from(vec![(index % 251) as u8; MIB])))
        .collect()
}

fn client_went_away() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "client went away")
}

#[tokio::test]
async fn put_then_get_round_trips() {
    let store = new_store();
    store
        .put(KEY, Bytes::from_static(b"photo bytes"))
        .await
        .expect("put");
    assert_eq!(store.get(KEY).await.expect("get"), "photo bytes");
    assert_eq!(bucket_keys(store.bucket()), vec![KEY.to_owned()]);
}

#[tokio::test]
async fn put_replaces_existing_object() {
    let store = new_store();
    store
        .put(KEY, Bytes::from_static(b"old"))
        .await
        .expect("put");
    store
        .put(KEY, Bytes::from_static(b"new"))
        .await
        .expect("put");
    assert_eq!(store.get(KEY).await.expect("get"), "new");
}

#[tokio::test]
async fn put_stream_counts_bytes() {
    let store = new_store();
    let written = store
        .put_stream(KEY, chunks(&[b"abc", b"", b"defg"]), 100)
        .await
        .expect("put_stream");
    assert_eq!(written, 7);
    assert_eq!(store.get(KEY).await.expect("get"), "abcdefg");
}

#[tokio::test]
async fn put_stream_accepts_exact_limit() {
    let store = new_store();
    let written = store
        .put_stream(KEY, chunks(&[b"abc", b"def"]), 6)
        .await
        .expect("a stream of exactly max_bytes is accepted");
    assert_eq!(written, 6);
    assert_eq!(store.get(KEY).await.expect("get"), "abcdef");
}

#[tokio::test]
async fn put_stream_over_limit_leaves_nothing() {
    let store = new_store();
    let result = store
        .put_stream(KEY, chunks(&[b"abc", b"def", b"g"]), 6)
        .await;
    assert!(
        matches!(result, Err(StoreError::TooLarge { limit: 6 })),
        "{result:?}"
    );
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());
    assert!(matches!(
        store.get(KEY).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn failed_put_stream_keeps_old_object() {
    let store = new_store();
    store
        .put(KEY, Bytes::from_static(b"old"))
        .await
        .expect("put");

    let result = store.put_stream(KEY, chunks(&[b"new", b"data"]), 5).await;
    assert!(
        matches!(result, Err(StoreError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(store.get(KEY).await.expect("get"), "old");
    assert_eq!(bucket_keys(store.bucket()), vec![KEY.to_owned()]);
}

#[tokio::test]
async fn stream_error_leaves_nothing() {
    let store = new_store();
    let items = vec![Ok(Bytes::from_static(b"partial")), Err(client_went_away())];
    let result = store
        .put_stream(KEY, stream::iter(items).boxed(), 100)
        .await;
    assert!(matches!(result, Err(StoreError::Stream(_))), "{result:?}");
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());
}

#[tokio::test]
async fn multipart_put_stream_round_trips() {
    let store = new_store();
    // Two full parts and a short last part.
    let items = mib_chunks(2 * S3_PART_SIZE / MIB + 1);
    let expected: Vec<u8> = items
        .iter()
        .flat_map(|item| {
            item.as_ref()
                .map(|chunk| chunk.to_vec())
                .unwrap_or_default()
        })
        .collect();
    let size = u64::try_from(expected.len()).expect("size fits in u64");

    let written = store
        .put_stream(KEY, stream::iter(items).boxed(), size)
        .await
        .expect("multipart put_stream");
    assert_eq!(written, size);
    assert!(store.get(KEY).await.expect("get") == expected);
    assert_eq!(pending_uploads(store.bucket()), Vec::<String>::new());
}

#[tokio::test]
async fn multipart_over_limit_aborts_upload() {
    let store = new_store();
    // The first part is sent before the stream crosses the limit.
    let limit = u64::try_from(S3_PART_SIZE + MIB / 2).expect("limit fits in u64");
    let items = mib_chunks(S3_PART_SIZE / MIB + 2);
    let result = store
        .put_stream(KEY, stream::iter(items).boxed(), limit)
        .await;
    assert!(
        matches!(result, Err(StoreError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());
    assert_eq!(pending_uploads(store.bucket()), Vec::<String>::new());
}

#[tokio::test]
async fn multipart_stream_error_aborts_upload() {
    let store = new_store();
    let mut items = mib_chunks(S3_PART_SIZE / MIB + 1);
    items.push(Err(client_went_away()));
    let result = store
        .put_stream(KEY, stream::iter(items).boxed(), u64::MAX)
        .await;
    assert!(matches!(result, Err(StoreError::Stream(_))), "{result:?}");
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());
    assert_eq!(pending_uploads(store.bucket()), Vec::<String>::new());
}

#[tokio::test]
async fn cancelled_put_stream_leaves_nothing() {
    let store = new_store();
    // One part's worth of chunks, then a stream that never ends, like a
    // stalled upload. The first part has been sent when the timeout fires.
    let stalled = stream::iter(mib_chunks(S3_PART_SIZE / MIB + 1))
        .chain(stream::pending())
        .boxed();
    let upload = store.put_stream(KEY, stalled, u64::MAX);
    let timed_out = tokio::time::timeout(Duration::from_secs(3), upload).await;
    assert!(timed_out.is_err(), "the upload should still be waiting");
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());

    // Dropping the upload future aborts the multipart upload in a task.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pending_uploads(store.bucket()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the cancelled multipart upload was not aborted within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn get_missing_is_not_found() {
    let store = new_store();
    let result = store.get(KEY).await;
    assert!(
        matches!(&result, Err(StoreError::NotFound { key }) if key == KEY),
        "{result:?}"
    );

    // A prefix of stored keys is not an object.
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");
    let result = store.get("tenants/t1").await;
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn delete_removes_object() {
    let store = new_store();
    store.put(KEY, Bytes::from_static(b"x")).await.expect("put");
    store.delete(KEY).await.expect("delete");
    assert!(matches!(
        store.get(KEY).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());
}

#[tokio::test]
async fn delete_missing_succeeds() {
    let store = new_store();
    store.delete(KEY).await.expect("deleting a missing object");
    store
        .delete_prefix("tenants/t1")
        .await
        .expect("deleting a missing prefix");
}

#[tokio::test]
async fn delete_prefix_matches_whole_segments() {
    let store = new_store();
    let inside = [
        "tenants/t1/projects/p1/photos/ph1/original",
        "tenants/t1/projects/p1/photos/ph1/grid.jpg",
        "tenants/t1/projects/p1/photos/ph2/original",
    ];
    // Keys that start with the same characters but not the same segments.
    let outside = [
        "tenants/t1/projects/p10/photos/ph1/original",
        "tenants/t1/projects/p1x",
        "tenants/t1/projects/p2/photos/ph1/original",
    ];
    for key in inside.iter().chain(&outside) {
        store.put(key, Bytes::from_static(b"x")).await.expect("put");
    }

    store
        .delete_prefix("tenants/t1/projects/p1")
        .await
        .expect("delete_prefix");

    let mut expected: Vec<String> = outside.iter().map(|key| key.to_string()).collect();
    expected.sort();
    assert_eq!(bucket_keys(store.bucket()), expected);
}

#[tokio::test]
async fn bad_keys_rejected_everywhere() {
    let store = new_store();
    for key in ["", "/etc/passwd", "a/../../b", "a//b", "a\\b", "a/", ".."] {
        let is_invalid =
            |result: Result<(), StoreError>| matches!(result, Err(StoreError::InvalidKey { .. }));
        assert!(
            is_invalid(store.put(key, Bytes::from_static(b"x")).await),
            "put {key:?}"
        );
        assert!(
            is_invalid(store.put_stream(key, chunks(&[b"x"]), 10).await.map(|_| ())),
            "put_stream {key:?}"
        );
        assert!(is_invalid(store.get(key).await.map(|_| ())), "get {key:?}");
        assert!(is_invalid(store.delete(key).await), "delete {key:?}");
        assert!(
            is_invalid(store.delete_prefix(key).await),
            "delete_prefix {key:?}"
        );
    }
    assert_eq!(bucket_keys(store.bucket()), Vec::<String>::new());
}

#[tokio::test]
async fn open_store_selects_s3() {
    let bucket = new_store().bucket().to_owned();
    let shared = open_store(&MediaStoreConfig::S3(s3_config(&bucket))).expect("open_store");
    shared
        .put(KEY, Bytes::from_static(b"x"))
        .await
        .expect("put through Arc<dyn MediaStore>");
    assert_eq!(shared.get(KEY).await.expect("get"), "x");
    assert_eq!(bucket_keys(&bucket), vec![KEY.to_owned()]);
}
