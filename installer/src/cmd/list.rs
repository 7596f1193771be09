//! `moat list ...`: ezmlm-make / ezmlm-sub / ezmlm-unsub / ezmlm-list over the SQL store.
//! The list manager (moat-lists) reads what is set here.

use anyhow::{Context as _, bail};
use moat_vdomain::address::Address;
use moat_vdomain::{List, ListChanges, ListFlags, MemberKind};

use crate::cli::{KindFlag, ListArgs, ListCmd};
use crate::context::Context;
use crate::output;
use crate::size::{format_quota, parse_quota};

pub async fn run(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let store = &ctx.store;
    let Some(cmd) = args.command else {
        let lists = store.list_lists(args.domain.as_deref()).await?;
        if args.json {
            return output::json(&lists);
        }
        let rows: Vec<Vec<String>> = lists
            .iter()
            .map(|l| {
                vec![
                    l.address.clone(),
                    l.members.to_string(),
                    l.digest_members.to_string(),
                    l.moderators.to_string(),
                    flags(l),
                    output::time(l.created),
                ]
            })
            .collect();
        output::table(
            &[
                "LIST",
                "MEMBERS",
                "DIGEST",
                "MODERATORS",
                "FLAGS",
                "CREATED",
            ],
            &rows,
        );
        return Ok(());
    };
    match cmd {
        ListCmd::Create {
            list,
            moderated,
            members_only,
            archive,
            digest,
        } => {
            let flags = ListFlags {
                moderated,
                members_only,
                archive,
                digest,
            };
            let l = store.create_list(&Address::parse(&list)?, flags).await?;
            println!(
                "created mailing list {} ({}); add members with: moat list add {} ADDRESS",
                l.address,
                self::flags(&l),
                l.address
            );
        }
        ListCmd::Show { list, json } => {
            let l = store.get_list(&Address::parse(&list)?).await?;
            if json {
                return output::json(&l);
            }
            show(&l);
        }
        ListCmd::Set {
            list,
            subject_prefix,
            max_size,
            reply_to,
            footer_file,
            no_footer,
            owner,
            moderated,
            members_only,
            archive,
            digest,
        } => {
            let addr = Address::parse(&list)?;
            let footer =
                match (footer_file, no_footer) {
                    (Some(path), _) => Some(std::fs::read_to_string(&path).with_context(|| {
                        format!("cannot read the footer file {}", path.display())
                    })?),
                    (None, true) => Some(String::new()),
                    (None, false) => None,
                };
            let changes = ListChanges {
                moderated,
                members_only,
                archive,
                digest,
                subject_prefix,
                max_message_bytes: max_size.as_deref().map(parse_quota).transpose()?,
                reply_to: reply_to
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                footer,
                owner: owner.map(|o| (!o.eq_ignore_ascii_case("none")).then_some(o)),
            };
            if changes.is_empty() {
                bail!("nothing to change: give at least one option (see moat list set --help)");
            }
            let l = store.update_list(&addr, &changes).await?;
            println!("updated mailing list {}", l.address);
            show(&l);
        }
        ListCmd::Delete { list, force } => {
            let l = store.delete_list(&Address::parse(&list)?, force).await?;
            let n = l.members + l.digest_members + l.moderators;
            println!(
                "deleted mailing list {} ({n} address{} removed with it)",
                l.address,
                if n == 1 { "" } else { "es" }
            );
        }
        ListCmd::Members { list, kind, json } => {
            let kind = kind
                .as_deref()
                .map(str::parse::<MemberKind>)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let members = store.list_members(&Address::parse(&list)?, kind).await?;
            if json {
                return output::json(&members);
            }
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    vec![
                        m.address.clone(),
                        m.kind.to_string(),
                        m.bounce_count.to_string(),
                        output::time(m.added_at),
                    ]
                })
                .collect();
            output::table(&["ADDRESS", "KIND", "BOUNCES", "ADDED"], &rows);
        }
        ListCmd::Add {
            list,
            address,
            kind,
        } => {
            let m = store
                .add_member(&Address::parse(&list)?, &address, roster(&kind))
                .await?;
            println!("added {} to {} as {}", m.address, m.list, m.kind);
        }
        ListCmd::Remove {
            list,
            address,
            kind,
        } => {
            let m = store
                .remove_member(&Address::parse(&list)?, &address, roster(&kind))
                .await?;
            println!("removed {} ({}) from {}", m.address, m.kind, m.list);
        }
    }
    Ok(())
}

fn roster(flag: &KindFlag) -> MemberKind {
    match (flag.moderator, flag.digest) {
        (true, _) => MemberKind::Moderator,
        (false, true) => MemberKind::Digest,
        (false, false) => MemberKind::Member,
    }
}

/// The switches that are on, comma-separated, or `-`.
fn flags(l: &List) -> String {
    let on: Vec<&str> = [
        (l.moderated, "moderated"),
        (l.members_only, "members-only"),
        (l.archive, "archive"),
        (l.digest, "digest"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| *name)
    .collect();
    if on.is_empty() {
        "-".into()
    } else {
        on.join(",")
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn show(l: &List) {
    println!("list:           {}", l.address);
    println!("created:        {}", output::time(l.created));
    println!("moderated:      {}", yes(l.moderated));
    println!("members only:   {}", yes(l.members_only));
    println!("archive:        {}", yes(l.archive));
    println!("digest:         {}", yes(l.digest));
    let prefix = if l.subject_prefix.is_empty() {
        "none".to_string()
    } else {
        format!("{:?}", l.subject_prefix)
    };
    println!("subject prefix: {prefix}");
    let size = match l.max_message_bytes {
        Some(_) => format_quota(l.max_message_bytes),
        None => "the server's limit".into(),
    };
    println!("max size:       {size}");
    let reply_to = match l.reply_to {
        moat_vdomain::ReplyTo::List => "list (replies go to the list)",
        moat_vdomain::ReplyTo::Poster => "poster (replies go to the author)",
        moat_vdomain::ReplyTo::None => "none (the poster's headers are kept)",
    };
    println!("reply-to:       {reply_to}");
    println!(
        "owner:          {}",
        l.owner
            .as_deref()
            .unwrap_or("none (LIST-owner mail goes to the moderators)")
    );
    let footer = match l.footer.lines().count() {
        0 => "none".to_string(),
        1 => "1 line".to_string(),
        n => format!("{n} lines"),
    };
    println!("footer:         {footer}");
    println!(
        "addresses:      {} member(s), {} digest member(s), {} moderator(s)",
        l.members, l.digest_members, l.moderators
    );
    println!("next post:      {}", l.next_post);
}
