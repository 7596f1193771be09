//! The authenticated state's mailbox commands: CREATE, DELETE, RENAME (RFC 3501 §6.3.3–5),
//! SUBSCRIBE, UNSUBSCRIBE (§6.3.6–7) and STATUS (§6.3.10). Names are checked
//! (`mailbox::name`) before anything touches the disk; the work runs on the blocking pool.

use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::status::StatusDataItemName;

use super::parse::mailbox_bytes;
use super::status::{self, StatusItem};
use super::{Flow, Session, blocking, response};
use crate::mailbox::name::{self, MailboxName, strip_trailing_separator};
use crate::mailbox::store::{Store, StoreError};
use crate::mailbox::subscriptions::{self, SubscriptionError};

impl Session {
    /// A checked name, or the NO already written.
    pub(super) fn checked(&self, tag: &str, raw: &[u8], out: &mut Vec<u8>) -> Option<MailboxName> {
        match name::parse(raw) {
            Ok(n) => Some(n),
            Err(e) => {
                response::no(out, tag, &format!("[CANNOT] {}.", e.text()));
                None
            }
        }
    }

    /// Checks the names, runs `work` on the user's store on the blocking pool, and answers
    /// `<what> completed` or the error.
    async fn on_mailboxes<const N: usize>(
        &mut self,
        tag: &str,
        what: &str,
        raw: [&[u8]; N],
        work: impl FnOnce(Store, [MailboxName; N]) -> Result<(), StoreError> + Send + 'static,
        out: &mut Vec<u8>,
    ) -> Flow {
        let mut names = Vec::with_capacity(N);
        for r in raw {
            match self.checked(tag, r, out) {
                Some(n) => names.push(n),
                None => return Flow::Continue,
            }
        }
        let (Ok(names), Some(store)) = (<[MailboxName; N]>::try_from(names), self.user_store())
        else {
            return Flow::Continue;
        };
        match blocking(move || work(store, names)).await {
            Ok(()) => response::ok(out, tag, &format!("{what} completed.")),
            Err(e) => self.store_error(out, tag, e),
        }
        Flow::Continue
    }

    pub(super) async fn create(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let raw = strip_trailing_separator(mailbox_bytes(&mailbox));
        self.on_mailboxes(tag, "CREATE", [raw], |store, [n]| store.create(&n), out)
            .await
    }

    pub(super) async fn delete(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let raw = mailbox_bytes(&mailbox);
        self.on_mailboxes(tag, "DELETE", [raw], |store, [n]| store.delete(&n), out)
            .await
    }

    pub(super) async fn rename(
        &mut self,
        tag: &str,
        from: Mailbox<'static>,
        to: Mailbox<'static>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let raw = [
            mailbox_bytes(&from),
            strip_trailing_separator(mailbox_bytes(&to)),
        ];
        let log = format!("{}: {}", self.config.who, self.user().unwrap_or("-"));
        let work = move |store: Store, [from, to]: [MailboxName; 2]| {
            store.rename(&from, &to)?;
            // Subscriptions follow the mailbox (INBOX itself stays where it is).
            if !from.is_inbox()
                && let Err(e) = subscriptions::rename(store.root().path(), &from.imap, &to.imap)
            {
                moat_common::warn!("{log}: subscriptions not renamed: {e:?}");
            }
            Ok(())
        };
        self.on_mailboxes(tag, "RENAME", raw, work, out).await
    }

    pub(super) async fn subscribe(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        subscribed: bool,
        out: &mut Vec<u8>,
    ) -> Flow {
        let what = if subscribed {
            "SUBSCRIBE"
        } else {
            "UNSUBSCRIBE"
        };
        let work = move |store: Store, [n]: [MailboxName; 1]| {
            subscriptions::set(store.root().path(), &n.imap, subscribed).map_err(|e| match e {
                SubscriptionError::TooMany => StoreError::Limit("too many subscriptions"),
                SubscriptionError::Busy => {
                    StoreError::Io("the subscriptions file stayed locked".into())
                }
                SubscriptionError::Io(e) => StoreError::Io(format!("subscriptions: {e}")),
            })
        };
        self.on_mailboxes(tag, what, [mailbox_bytes(&mailbox)], work, out)
            .await
    }

    pub(super) async fn status(
        &mut self,
        tag: &str,
        mailbox: Mailbox<'static>,
        items: &[StatusDataItemName],
        out: &mut Vec<u8>,
    ) -> Flow {
        let Some(items) = items
            .iter()
            .map(StatusItem::from_codec)
            .collect::<Option<Vec<_>>>()
        else {
            return self.bad(out, tag, "Unsupported STATUS item.");
        };
        if items.iter().any(|i| i.enables_condstore()) {
            self.condstore = true;
        }
        let (Some(name), Some(store)) = (
            self.checked(tag, mailbox_bytes(&mailbox), out),
            self.user_store(),
        ) else {
            return Flow::Continue;
        };
        let imap = name.imap.clone();
        let counts = blocking(move || {
            let maildir = store.maildir(&name)?;
            crate::mailbox::status::counts(&maildir)
        })
        .await;
        match counts {
            Ok(c) => {
                status::write(out, &imap, &items, &c);
                response::ok(out, tag, "STATUS completed.");
            }
            Err(e) => self.store_error(out, tag, e),
        }
        Flow::Continue
    }
}
