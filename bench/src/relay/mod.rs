//! `moat-bench relay`: messages per second submitted and relayed to another SMTP server, Moat
//! against a private Postfix in the same run, with the same client and the same kind of sink.
//!
//! Each round starts a fresh sink (`sink.rs`, a loopback SMTP server that drops what it gets and
//! notes when each message arrived) and a fresh server told to send every domain but its own to
//! the sink (Moat: `[remote.routes] "*"`, Postfix: `relayhost`), warms it up, then sends the
//! measured load to `rcpt@relay.test`: `--messages` messages over `--sessions` sessions, each
//! opened before the clock starts with STARTTLS (the same benchmark certificate on both
//! servers) and, for Moat, AUTH PLAIN on its submission port (Moat relays for authenticated
//! users only; Postfix relays for 127.0.0.0/8 in mynetworks). "Accepted" is the time to the last
//! `250` after DATA; "relayed" the time until the sink holds every message; latency runs from a
//! message's MAIL FROM to its arrival at the sink.

mod latency;
pub mod sink;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::ClientConfig;

use self::latency::Latency;
use self::sink::Sink;
use crate::report::Table;
use crate::smtp::client::Load;
use crate::smtp::measure::{Run, cpu_cells, describe, measure, median_run, rate, ratios};
use crate::smtp::rounds::{Frame, machine_line};
use crate::smtp::tls::Certificate;
use crate::smtp::{self, Args, DOMAIN, Only, Options, PASSWORD, name};

/// The recipients' domain: hosted by neither server, routed to the sink by both.
const REMOTE_DOMAIN: &str = "relay.test";

/// One measured load.
struct Relayed {
    run: Run,
    latency: Latency,
    /// Connections the sink accepted during the load.
    connections: usize,
}

pub fn run(args: &Args) -> Result<()> {
    let frame = Frame::new(args, ".moat-bench-relay-")?;
    let certificate = Certificate::generate()?;
    let client_tls = certificate.client_config()?;
    println!(
        "Relay benchmark: {} messages of {} bytes over {} parallel sessions (STARTTLS; AUTH on Moat) \
         relayed to a loopback sink (warm-up {}), {} round(s), in {}",
        args.messages,
        args.size,
        args.sessions,
        args.warmup,
        args.rounds,
        frame.base.display(),
    );
    println!("{}", machine_line());
    let results = frame.rounds(
        args,
        |_| Ok(()),
        |round, which, dir| {
            let setup = Setup {
                bin_dir: &frame.bin_dir,
                certificate: &certificate,
                client_tls: &client_tls,
            };
            bench_one(which, dir, &setup, args, round)
        },
        |r| {
            let [p50, p90, p99, max] = r.latency.cells();
            format!(
                "{}  latency ms p50 {p50} p90 {p90} p99 {p99} max {max}; {} sink connections",
                describe(&r.run, args.messages, "relayed"),
                r.connections
            )
        },
    )?;
    report(args, &results);
    frame.finish(args.keep);
    Ok(())
}

/// What every round shares.
struct Setup<'a> {
    bin_dir: &'a Path,
    certificate: &'a Certificate,
    client_tls: &'a Arc<ClientConfig>,
}

/// Starts a sink and one server relaying to it, warms up, measures, stops both.
fn bench_one(
    which: Only,
    dir: &Path,
    setup: &Setup<'_>,
    args: &Args,
    round: usize,
) -> Result<Relayed> {
    let sink = Sink::start()?;
    let options = Options {
        sessions: args.sessions,
        tls: Some(setup.certificate),
        relay_to: Some(sink.port()),
    };
    let mut server = smtp::start(which, dir, setup.bin_dir, &options)?;
    let sender = format!("sender@{DOMAIN}");
    let load = |messages: usize, tag: &str| Load {
        port: server.relay_port(),
        sessions: args.sessions,
        messages,
        size: args.size,
        sender: sender.clone(),
        recipient: format!("rcpt@{REMOTE_DOMAIN}"),
        tag: format!("r{}-{tag}", round + 1),
        tls: Some(Arc::clone(setup.client_tls)),
        login: server
            .relay_needs_login()
            .then(|| (sender.clone(), PASSWORD.to_owned())),
    };
    let relay = |load: &Load| measure(server.as_ref(), load, &|| sink.count(&load.tag), "");
    if args.warmup > 0 {
        relay(&load(args.warmup, "warmup"))
            .with_context(|| format!("warming up {}", server.name()))?;
    }
    let measured = load(args.messages, "load");
    let connections_before = sink.connections();
    let (run, finished) =
        relay(&measured).with_context(|| format!("measuring {}", server.name()))?;
    let connections = sink.connections() - connections_before;
    let latency = Latency::of(&finished.started, &sink.arrivals(&measured.tag))?;
    server.stop()?;
    if sink.duplicates() > 0 || sink.unknown() > 0 {
        eprintln!(
            "moat-bench: {}: the sink got {} duplicate and {} unknown messages",
            server.name(),
            sink.duplicates(),
            sink.unknown()
        );
    }
    Ok(Relayed {
        run,
        latency,
        connections,
    })
}

/// The medians side by side, with Moat ÷ Postfix.
fn report(args: &Args, results: &[(Only, Vec<Relayed>)]) {
    let summaries: Vec<(Only, Run, Latency, usize)> = results
        .iter()
        .map(|(which, rounds)| {
            let runs: Vec<Run> = rounds.iter().map(|r| r.run).collect();
            let latencies: Vec<Latency> = rounds.iter().map(|r| r.latency).collect();
            let mut connections: Vec<usize> = rounds.iter().map(|r| r.connections).collect();
            connections.sort_unstable();
            let connections = connections[connections.len() / 2];
            (
                *which,
                median_run(&runs),
                Latency::median(&latencies),
                connections,
            )
        })
        .collect();
    let mut table = Table::new(&[
        "server",
        "relayed/s",
        "accepted/s",
        "relayed in s",
        "latency ms p50",
        "p90",
        "p99",
        "max",
        "sink conns",
        "CPU busy",
        "CPU ms/msg",
        "server user+sys ms/msg",
    ]);
    for (which, run, latency, connections) in &summaries {
        let [p50, p90, p99, max] = latency.cells();
        let [busy, machine, own] = cpu_cells(run.cpu, args.messages);
        table.row(vec![
            name(*which).to_owned(),
            format!("{:.0}", rate(args.messages, run.delivered)),
            format!("{:.0}", rate(args.messages, run.accepted)),
            format!("{:.3}", run.delivered.as_secs_f64()),
            p50,
            p90,
            p99,
            max,
            connections.to_string(),
            busy,
            machine,
            own,
        ]);
    }
    if let [(_, moat, ..), (_, postfix, ..)] = summaries.as_slice() {
        let [accepted, relayed] = ratios(moat, postfix);
        table.row(vec!["moat ÷ postfix".to_owned(), relayed, accepted]);
    }
    println!();
    print!("{}", table.render());
    println!(
        "\nMedian of {} round(s). \"relayed\": from the start of the load until the sink held every \
         message; \"accepted\": until the last 250 after DATA. Latency: MAIL FROM sent to final dot \
         read by the sink. CPU is machine-wide (servers, client, sink, kernel and anything else \
         running) until the last message reached the sink; \"server\" is the user + system CPU \
         of the server's own processes only.",
        args.rounds
    );
}
