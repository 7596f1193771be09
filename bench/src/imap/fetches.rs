//! One round of the timed IMAP commands against one server, over its working copy of the folder:
//! cold = the first open of a fresh copy (hard links of the pristine folder: no index, no UID
//! list, for either server), warm = the same commands again in a new session. Each step is timed
//! from the command's send to its tagged OK, with the server's CPU (its whole process tree).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::runtime::Runtime;

use super::client::{Imap, Reply};
use crate::smtp::cpu;

/// One timed command.
#[derive(Debug, Default, Clone, Copy)]
pub struct Step {
    pub wall: Duration,
    /// The server's CPU seconds (user + system) during the command.
    pub cpu: f64,
}

/// One round's steps, in the order they run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Round {
    pub cold_flags: [Step; 2],
    pub warm_flags: [Step; 2],
    pub cold_envelope: [Step; 2],
    pub warm_envelope: [Step; 2],
    pub search: Step,
    pub hits: usize,
}

/// Where one server is and what it must return.
pub struct Target<'a> {
    pub port: u16,
    /// The server's root process (its tree's CPU is counted).
    pub root: u32,
    pub user: &'a str,
    pub password: &'a str,
    /// The server's working copy of the folder, and the pristine folder it is linked from.
    pub work: &'a Path,
    pub pristine: &'a Path,
    pub count: usize,
    pub search: &'a str,
}

pub fn round(rt: &Runtime, t: &Target<'_>) -> Result<Round> {
    fresh_copy(t.work, t.pristine)?;
    let cold_flags = rt.block_on(select_and(t, "UID FETCH 1:* (FLAGS)"))?;
    let warm_flags = rt.block_on(select_and(t, "UID FETCH 1:* (FLAGS)"))?;
    fresh_copy(t.work, t.pristine)?;
    let cold_envelope = rt.block_on(select_and(t, "FETCH 1:* (ENVELOPE)"))?;
    let warm_envelope = rt.block_on(select_and(t, "FETCH 1:* (ENVELOPE)"))?;
    let (search, reply) = rt.block_on(async {
        let mut imap = session(t).await?;
        imap.run("SELECT INBOX").await?;
        let timed = timed(t, &mut imap, &format!("SEARCH TEXT \"{}\"", t.search)).await?;
        logout(imap).await?;
        anyhow::Ok(timed)
    })?;
    Ok(Round {
        cold_flags,
        warm_flags,
        cold_envelope,
        warm_envelope,
        search,
        hits: reply.found,
    })
}

/// A new logged-in session (not timed).
async fn session(t: &Target<'_>) -> Result<Imap> {
    let mut imap = Imap::connect(t.port, 256 * 1024).await?;
    imap.login(t.user, t.password).await?;
    Ok(imap)
}

/// SELECT INBOX then `fetch` in a new session: both timed; every message must be answered.
async fn select_and(t: &Target<'_>, fetch: &str) -> Result<[Step; 2]> {
    let mut imap = session(t).await?;
    let (select, _) = timed(t, &mut imap, "SELECT INBOX").await?;
    let (fetched, reply) = timed(t, &mut imap, fetch).await?;
    if reply.fetches != t.count {
        bail!(
            "{fetch}: {} FETCH responses for {} messages",
            reply.fetches,
            t.count
        );
    }
    logout(imap).await?;
    Ok([select, fetched])
}

async fn timed(t: &Target<'_>, imap: &mut Imap, command: &str) -> Result<(Step, Reply)> {
    let cpu_before = cpu::tree_ticks(t.root);
    let start = Instant::now();
    let reply = imap.run(command).await?;
    let wall = start.elapsed();
    let cpu = match (cpu_before, cpu::tree_ticks(t.root)) {
        // /proc times are in USER_HZ ticks, fixed at 100 on Linux.
        (Some((u0, s0)), Some((u1, s1))) => (u1 + s1).saturating_sub(u0 + s0) as f64 / 100.0,
        _ => 0.0,
    };
    Ok((Step { wall, cpu }, reply))
}

/// LOGOUT, then a pause so that what a server writes when a session ends (Dovecot's index and
/// cache) is on disk before the next session opens the folder.
async fn logout(mut imap: Imap) -> Result<()> {
    imap.run("LOGOUT").await?;
    drop(imap);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Replaces `work` with hard links to `pristine`: a copy of 50,000 files in a second, and the
/// pristine files are never changed (servers only rename, and write their own index files).
fn fresh_copy(work: &Path, pristine: &Path) -> Result<()> {
    if work.exists() {
        std::fs::remove_dir_all(work)?;
    }
    let status = Command::new("cp")
        .arg("-al")
        .arg(pristine)
        .arg(work)
        .status()?;
    if !status.success() {
        bail!("cp -al {} {} failed", pristine.display(), work.display());
    }
    Ok(())
}
