//! `hostile-wasi`: a guest that tries every way out of its sandbox and reports
//! what each attempt returned, one emitted record per attempt (key: the attempt,
//! value: `allowed: …` or `denied: …`) to the `output` topic.
//!
//! It tries files outside any preopen (`/etc/passwd`, `../` paths), escapes from
//! `/scratch` (`..` and a symlink the test planted), a write to `/tmp`, a TCP
//! connection to 127.0.0.1 on the configured `port`, a UDP socket, a name lookup,
//! the environment and the arguments. Last it writes and reads back a file in
//! `/scratch`, which is allowed exactly when the host gave it a scratch
//! directory.

use std::cell::Cell;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

use weir_guest::{Batch, Config, Failure, FailureKind, Processor};

thread_local! {
    static PORT: Cell<u16> = const { Cell::new(9) };
}

fn outcome<T>(result: std::io::Result<T>, show: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("allowed: {}", show(value)),
        Err(e) => format!("denied: {e}"),
    }
}

fn read(path: &str) -> String {
    outcome(std::fs::read_to_string(path), |text| {
        format!("read {} bytes", text.len())
    })
}

fn attempts() -> Vec<(&'static str, String)> {
    let port = PORT.with(Cell::get);
    let vars: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
    let args: Vec<String> = std::env::args().collect();
    vec![
        ("read /etc/passwd", read("/etc/passwd")),
        ("read ../etc/passwd", read("../etc/passwd")),
        (
            "read ../../../../etc/passwd",
            read("../../../../etc/passwd"),
        ),
        (
            "read /scratch/../etc/passwd",
            read("/scratch/../etc/passwd"),
        ),
        (
            "read /scratch/../../etc/passwd",
            read("/scratch/../../etc/passwd"),
        ),
        (
            "list /scratch/..",
            outcome(std::fs::read_dir("/scratch/.."), |d| {
                format!("{} entries", d.count())
            }),
        ),
        ("read /scratch/escape (symlink)", read("/scratch/escape")),
        (
            "write /tmp/weir-hostile",
            outcome(std::fs::write("/tmp/weir-hostile", b"x"), |()| {
                "wrote".into()
            }),
        ),
        (
            "connect tcp 127.0.0.1",
            outcome(TcpStream::connect(("127.0.0.1", port)), |s| {
                format!("connected to {:?}", s.peer_addr())
            }),
        ),
        (
            "bind udp 127.0.0.1",
            outcome(UdpSocket::bind("127.0.0.1:0"), |s| {
                format!("bound {:?}", s.local_addr())
            }),
        ),
        (
            "resolve localhost",
            outcome(("localhost", port).to_socket_addrs(), |a| {
                format!("{} addresses", a.count())
            }),
        ),
        (
            "environment",
            if vars.is_empty() {
                "denied: no variables".to_string()
            } else {
                format!("allowed: {}", vars.join(","))
            },
        ),
        (
            "arguments",
            if args.is_empty() {
                "denied: no arguments".to_string()
            } else {
                format!("allowed: {}", args.join(" "))
            },
        ),
        ("scratch write and read", scratch()),
    ]
}

/// Writes a file into `/scratch` and reads it back.
fn scratch() -> String {
    let path = "/scratch/hello.txt";
    let written = std::fs::write(path, b"hello from scratch");
    outcome(
        written.and_then(|()| std::fs::read_to_string(path)),
        |text| text,
    )
}

struct Wasi;

impl Processor for Wasi {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "");
        if let Some(port) = config.get("port") {
            let port = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
            PORT.with(|p| p.set(port));
        }
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        let Some(first) = batch.records().next() else {
            return Ok(());
        };
        for (attempt, result) in attempts() {
            println!("{attempt}: {result}");
            weir_guest::emit(&topic, Some(attempt.as_bytes()), result.as_bytes(), &[])
                .map_err(|e| first.fail(FailureKind::Fatal, e))?;
        }
        Ok(())
    }
}

weir_guest::export_processor!(Wasi);
