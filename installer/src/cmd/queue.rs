//! `moat queue ...`: postqueue/qmail-qread for Moat, through the queue's admin requests (only
//! root and the queue's own user may ask; the queue checks).

use moat_common::config::Config;
use moat_smtp::queue::admin_client::QueueAdmin;
use serde_json::json;

use crate::cli::QueueCmd;
use crate::output;

pub async fn run(config: &Config, cmd: QueueCmd) -> anyhow::Result<()> {
    let socket = config.run_dir.join("queue.sock");
    if !socket.exists() {
        anyhow::bail!(
            "the queue is not running ({} does not exist): start it with `moat up` or `moat serve`",
            socket.display()
        );
    }
    let admin = QueueAdmin::new(&socket);
    match cmd {
        QueueCmd::List { json } => {
            let list = admin.list().await?;
            if json {
                let items: Vec<_> = list
                    .iter()
                    .map(|m| {
                        json!({"id": m.id, "arrival": m.arrival, "size": m.size,
                               "sender": m.sender, "recipients": m.recipients})
                    })
                    .collect();
                return output::json(&items);
            }
            if list.is_empty() {
                println!("the queue is empty");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|m| {
                    vec![
                        m.id.clone(),
                        output::time(m.arrival as i64),
                        m.size.to_string(),
                        format!("<{}>", m.sender),
                        m.recipients.clone(),
                    ]
                })
                .collect();
            output::table(&["ID", "ARRIVED", "SIZE", "FROM", "WAITING FOR"], &rows);
            println!("{} message(s)", list.len());
        }
        QueueCmd::Show { id, json } => {
            let d = admin.show(&id).await?;
            if json {
                let rcpts: Vec<_> = d
                    .recipients
                    .iter()
                    .map(|r| json!({"address": r.address, "state": r.state, "text": r.text}))
                    .collect();
                return output::json(&json!({
                    "id": d.id, "arrival": d.arrival, "size": d.size, "sender": d.sender,
                    "origin": d.origin, "client": d.client, "uid": d.uid, "attempts": d.attempts,
                    "next_try": d.next_try, "last_error": d.last_error, "verp": d.verp,
                    "recipients": rcpts,
                }));
            }
            println!("id:         {}", d.id);
            println!("arrived:    {}", output::time(d.arrival as i64));
            println!("size:       {}", d.size);
            let verp = if d.verp { " (VERP)" } else { "" };
            println!("from:       <{}>{verp}", d.sender);
            println!("origin:     {} ({}; uid {})", d.origin, d.client, d.uid);
            println!("attempts:   {}", d.attempts);
            match d.next_try {
                Some(t) => println!("next try:   {}", output::time(t as i64)),
                None => println!("next try:   now"),
            }
            if !d.last_error.is_empty() {
                println!("last error: {}", d.last_error);
            }
            for r in &d.recipients {
                println!("  {:<9} {}  {}", r.state, r.address, r.text);
            }
        }
        QueueCmd::Flush => println!("{}", admin.flush().await?),
        QueueCmd::Delete { id } => println!("{}", admin.delete(&id).await?),
    }
    Ok(())
}
