//! Slow and greedy clients against the server's connection loop: headers never finished,
//! a body that stops half-way, a kept-alive connection left idle, and one address opening
//! more connections than it may; a normal client is served all the while.

use axum::Router;
use axum::routing::{get, post};
use ringfence_server::{ConnectionLimits, serve_connections};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(limits: ConnectionLimits) -> String {
    let router = Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/echo", post(|body: String| async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { serve_connections(listener, router, std::future::pending(), &limits).await });
    addr
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_read: Duration::from_secs(1),
        body_read: Duration::from_secs(1),
        per_client: 4,
        loopback_exempt: false,
    }
}

/// Whether the server closed the connection within `within` (reads until EOF or an error).
async fn closed_within(s: &mut TcpStream, within: Duration) -> (bool, String) {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (r.is_ok(), String::from_utf8_lossy(&seen).into_owned())
}

async fn normal_request(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/")).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn headers_never_finished_are_cut_off_and_others_are_served_meanwhile() {
    let addr = start(limits()).await;
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert_eq!(normal_request(&addr).await, "hello", "served while another client stalls");
    let (closed, _) = closed_within(&mut stalled, Duration::from_secs(5)).await;
    assert!(closed, "a client that never finishes its headers is disconnected");
}

#[tokio::test]
async fn a_body_that_stops_half_way_is_refused_in_time() {
    let addr = start(limits()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let (closed, answer) = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("not received within the designated timeout"), "{answer}");
    assert!(closed, "{answer}");
    assert_eq!(normal_request(&addr).await, "hello");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let addr = start(limits()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("hello"));
    let (closed, _) = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "the connection sat idle past the header timeout");
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_connections() {
    let addr = start(ConnectionLimits { header_read: Duration::from_secs(30), ..limits() }).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        assert!(s.read(&mut buf).await.unwrap() > 0);
        held.push(s);
    }
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (closed, answer) = closed_within(&mut extra, Duration::from_secs(2)).await;
    assert!(closed && answer.is_empty(), "the fifth connection is closed unanswered: {answer}");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(normal_request(&addr).await, "hello", "a freed slot is usable again");
}
