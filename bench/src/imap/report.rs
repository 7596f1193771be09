//! The IMAP benchmark's output: medians of the timed commands with Dovecot ÷ Moat time ratios,
//! and the memory per idle connection with the per-program split of the growth.

use std::time::Duration;

use super::Args;
use super::corpus::Corpus;
use super::fetches::{Round, Step};
use super::memory::Usage;
use super::templates::SEARCH_WORD;
use crate::report::Table;
use crate::smtp::measure::{median, median_f64};

/// The idle-connection measurement of one server.
pub struct Idle {
    pub before: Usage,
    pub after: Usage,
    /// Per program after the first login (before the warm-up burst), and before the measured
    /// connections.
    pub split_first: Vec<(String, Usage)>,
    pub split_before: Vec<(String, Usage)>,
    pub split_after: Vec<(String, Usage)>,
    pub connections: usize,
    pub login_time: Duration,
}

pub fn machine() -> String {
    crate::smtp::rounds::machine_line()
}

/// One round on one line (progress on stderr).
pub fn line(r: &Round) -> String {
    let pair = |s: &[Step; 2]| {
        format!(
            "{:.2}+{:.2}",
            s[0].wall.as_secs_f64(),
            s[1].wall.as_secs_f64()
        )
    };
    format!(
        "FLAGS cold {} warm {}  ENVELOPE cold {} warm {}  SEARCH {:.2} s ({} hits)",
        pair(&r.cold_flags),
        pair(&r.warm_flags),
        pair(&r.cold_envelope),
        pair(&r.warm_envelope),
        r.search.wall.as_secs_f64(),
        r.hits
    )
}

/// The median of one step over the rounds, wall time and CPU separately.
fn median_step(rounds: &[Round], pick: impl Fn(&Round) -> Step) -> Step {
    Step {
        wall: median(rounds.iter().map(&pick).map(|s| s.wall).collect()),
        cpu: median_f64(rounds.iter().map(&pick).map(|s| s.cpu).collect()),
    }
}

fn sum(s: [Step; 2]) -> Step {
    Step {
        wall: s[0].wall + s[1].wall,
        cpu: s[0].cpu + s[1].cpu,
    }
}

pub fn render(
    args: &Args,
    corpus: &Corpus,
    rounds: &[Vec<Round>; 2],
    idle: Option<&[Idle; 2]>,
    machine: &str,
) -> String {
    let mut out = format!(
        "IMAP benchmark: one folder of {} messages ({:.0} MB, {} templates), median of {} \
         round(s); ratio = Dovecot time ÷ Moat time (> 1: Moat faster)\n{machine}\n\n",
        corpus.count,
        corpus.bytes as f64 / 1e6,
        args.templates,
        args.rounds
    );
    type Pick = fn(&Round) -> [Step; 2];
    let tests: [(&str, Pick); 4] = [
        ("UID FETCH 1:* (FLAGS), cold", |r| r.cold_flags),
        ("UID FETCH 1:* (FLAGS), warm", |r| r.warm_flags),
        ("FETCH 1:* (ENVELOPE), cold", |r| r.cold_envelope),
        ("FETCH 1:* (ENVELOPE), warm", |r| r.warm_envelope),
    ];
    let mut table = Table::new(&[
        "test",
        "moat s",
        "dovecot s",
        "ratio",
        "moat CPU s",
        "dovecot CPU s",
    ]);
    let mut row = |name: String, pick: &dyn Fn(&Round) -> Step| {
        let [m, d] = [0, 1].map(|i| median_step(&rounds[i], pick));
        table.row(vec![
            name,
            format!("{:.3}", m.wall.as_secs_f64()),
            format!("{:.3}", d.wall.as_secs_f64()),
            format!(
                "{:.2}",
                d.wall.as_secs_f64() / m.wall.as_secs_f64().max(1e-9)
            ),
            format!("{:.2}", m.cpu),
            format!("{:.2}", d.cpu),
        ]);
    };
    for (name, pick) in tests {
        row(format!("{name}: SELECT"), &|r| pick(r)[0]);
        row(format!("{name}: FETCH"), &|r| pick(r)[1]);
        row(format!("{name}: both"), &|r| sum(pick(r)));
    }
    row(format!("SEARCH TEXT \"{SEARCH_WORD}\", warm"), &|r| {
        r.search
    });
    out.push_str(&table.render());
    let hits = |i: usize| rounds[i].first().map_or(0, |r| r.hits);
    out.push_str(&format!(
        "SEARCH hits: moat {}, dovecot {}, expected {} (messages with the word in a text part or \
         the subject)\n",
        hits(0),
        hits(1),
        corpus.expected_hits
    ));
    if let Some(idle) = idle {
        out.push('\n');
        out.push_str(&render_idle(idle));
    }
    out
}

fn render_idle(idle: &[Idle; 2]) -> String {
    let n = idle[0].connections;
    let mut out = format!(
        "Idle connections: {n} logged in as one user ({}@), silent; the server's whole process \
         tree, after minus before\n\n",
        super::IDLE
    );
    let mut table = Table::new(&[
        "server",
        "processes",
        "RSS before MiB",
        "RSS after MiB",
        "RSS KiB/conn",
        "PSS KiB/conn",
        "logins/s",
    ]);
    for (name, m) in ["moat", "dovecot"].iter().zip(idle) {
        let per = |after: u64, before: u64| after.saturating_sub(before) as f64 / n as f64;
        table.row(vec![
            name.to_string(),
            format!("{} → {}", m.before.processes, m.after.processes),
            format!("{:.1}", m.before.rss_kib as f64 / 1024.0),
            format!("{:.1}", m.after.rss_kib as f64 / 1024.0),
            format!("{:.1}", per(m.after.rss_kib, m.before.rss_kib)),
            format!("{:.1}", per(m.after.pss_kib, m.before.pss_kib)),
            format!("{:.0}", n as f64 / m.login_time.as_secs_f64().max(1e-9)),
        ]);
    }
    out.push_str(&table.render());
    for (title, first) in [
        ("while the connections were open", false),
        ("from the first login, the warm-up logins included", true),
    ] {
        out.push_str(&format!("Growth by program {title} (RSS / PSS, MiB):\n"));
        for (name, m) in ["moat", "dovecot"].iter().zip(idle) {
            let from = if first {
                &m.split_first
            } else {
                &m.split_before
            };
            out.push_str(&format!("  {name}: {}\n", growth(from, &m.split_after)));
        }
    }
    out
}

/// The five programs using the most memory after, with their growth since `from`.
fn growth(from: &[(String, Usage)], after: &[(String, Usage)]) -> String {
    let grown: Vec<String> = after
        .iter()
        .take(5)
        .map(|(program, a)| {
            let b = from
                .iter()
                .find(|(p, _)| p == program)
                .map_or(Usage::default(), |(_, u)| *u);
            format!(
                "{program} ×{} {:+.1} / {:+.1}",
                a.processes,
                (a.rss_kib as f64 - b.rss_kib as f64) / 1024.0,
                (a.pss_kib as f64 - b.pss_kib as f64) / 1024.0
            )
        })
        .collect();
    grown.join(", ")
}
