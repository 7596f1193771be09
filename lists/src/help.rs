//! `list-help@`: the commands a list understands, mailed to whoever asked (ezmlm's
//! `ezmlm-manage` help). Not answered for the null sender or machine-sent mail.

use std::fs::File;
use std::sync::Arc;

use moat_common::wire::Status;

use crate::context::{self, Ctx};
use crate::reply::Reply;
use crate::request::Request;

/// The help text for `list` (`local@domain`).
pub fn text(list: &str) -> String {
    let (local, domain) = list.rsplit_once('@').unwrap_or((list, ""));
    format!(
        "This is the list manager for <{list}>.\n\
         \n\
         To post to the list, write to <{list}>.\n\
         \n\
         Commands, each by sending an empty message to an address:\n\
         \n\
         \x20 <{local}-subscribe@{domain}>    subscribe (you will be asked to confirm)\n\
         \x20 <{local}-unsubscribe@{domain}>  unsubscribe (likewise)\n\
         \x20 <{local}-help@{domain}>         this text\n\
         \x20 <{local}-owner@{domain}>        the list's owner\n"
    )
}

/// Mails the help text to the request's sender.
pub async fn answer(ctx: &Ctx, req: &Request, file: Arc<File>) -> Status {
    if let Err(verdict) = context::screen(req, "help", file).await {
        return verdict;
    }
    let (local, domain) = req.list_parts();
    let from = format!("{local}-help@{domain}");
    let subject = format!("Help for {}", req.list);
    let body = text(&req.list);
    let reply = Reply {
        list: &req.list,
        from: &from,
        to: &req.sender,
        reply_to: None,
        subject: &subject,
        body: &body,
        queue_id: &req.queue_id,
        hostname: &ctx.hostname,
    };
    context::queued(
        req,
        "help",
        &req.sender,
        reply.send(&ctx.queue_socket).await,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_command_addresses() {
        let t = super::text("dev@example.test");
        assert!(t.contains("<dev-subscribe@example.test>"));
        assert!(t.contains("<dev-help@example.test>"));
    }
}
