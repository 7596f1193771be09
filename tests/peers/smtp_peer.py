"""A receiving SMTP server for moat-remote's tests, on aiosmtpd (Debian python3-aiosmtpd).

Usage: smtp_peer.py PORT OUT_DIR [CERT KEY]
Recipients decide the answer by their local part: ok* -> 250, perm* -> 550 5.1.1,
temp* -> 451 4.3.0. Each accepted message is saved as OUT_DIR/<n>.eml (the bytes after
dot-unstuffing), OUT_DIR/<n>.env (MAIL FROM, then one RCPT per line) and OUT_DIR/<n>.opts (the
MAIL FROM parameters, e.g. "BODY=8BITMIME SMTPUTF8"). OUT_DIR/connections holds "<sessions so
far> <most at once>" (a session counts from its first EHLO/HELO). With CERT and KEY, STARTTLS is
offered. Prints "ready" when listening.

Environment: PEER_ADDRESS (bind address, default 127.0.0.1), PEER_NO_SMTPUTF8=1 and
PEER_NO_8BITMIME=1 (do not offer SMTPUTF8 or 8BITMIME; both are offered by default),
PEER_DATA_DELAY (seconds to wait before answering the end of data: a slow server).
PEER_AUTH=USER:PASSWORD requires AUTH with that login before MAIL (offered only under TLS unless
PEER_AUTH_PLAINTEXT=1; PEER_AUTH_MECHANISMS="LOGIN" offers only those, default PLAIN and LOGIN).
Every AUTH command is logged to OUT_DIR/auth as "AUTH <MECHANISM>", each checked login as
"<login> ok" or "<login> refused" (never the password), and each message's session login to
OUT_DIR/<n>.login. Without PEER_AUTH nothing changes.
PEER_REFUSE="a@b,c@d" answers RCPT for those addresses (any case) with 550 5.1.1, whatever the
local part, and logs each such RCPT to OUT_DIR/refused as "<MAIL FROM> <RCPT>" (before
answering; PEER_REFUSE_DELAY seconds pass between the log line and the 550).
"""
import asyncio
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Sessions:
    """Counts SMTP sessions: in total and the most open at once."""

    def __init__(self, out):
        self.out = out
        self.path = os.path.join(out, "connections")
        self.total = self.open = self.most = 0

    def change(self, delta):
        self.open += delta
        if delta > 0:
            self.total += 1
            self.most = max(self.most, self.open)
        with open(self.path + ".tmp", "w") as f:
            f.write("%d %d\n" % (self.total, self.most))
        os.rename(self.path + ".tmp", self.path)


class CountingSMTP(SMTP):
    sessions = None

    async def smtp_EHLO(self, hostname):
        self._count()
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname):
        self._count()
        await super().smtp_HELO(hostname)

    def _count(self):
        if not getattr(self, "_counted", False):
            self._counted = True
            self.sessions.change(1)

    async def smtp_AUTH(self, arg):
        # Logged before any check (TLS, mechanism), so a test sees every attempt the client made.
        log_auth(self.sessions.out, "AUTH " + (arg or "").split(" ")[0].upper())
        await super().smtp_AUTH(arg)

    def connection_lost(self, exc):
        if getattr(self, "_counted", False):
            self._counted = False
            self.sessions.change(-1)
        super().connection_lost(exc)


def log_auth(out, line):
    with open(os.path.join(out, "auth"), "a") as f:
        f.write(line + "\n")


class Authenticator:
    """Accepts one login (PEER_AUTH) and logs every login it checks, without the password."""

    def __init__(self, out, login):
        self.out = out
        self.user, self.password = login.split(":", 1)

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult
        user = auth_data.login.decode("utf-8", "replace")
        ok = user == self.user and auth_data.password.decode("utf-8", "replace") == self.password
        log_auth(self.out, "%s %s" % (user, "ok" if ok else "refused"))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class Handler:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        local = address.split("@")[0].lower()
        refuse = [a.strip().lower() for a in os.environ.get("PEER_REFUSE", "").split(",")]
        if address.lower() in refuse:
            with open(os.path.join(self.out, "refused"), "a") as f:
                f.write("%s %s\n" % (envelope.mail_from, address))
            await asyncio.sleep(float(os.environ.get("PEER_REFUSE_DELAY", "0")))
            return "550 5.1.1 no such user here"
        if local.startswith("perm"):
            return "550 5.1.1 no such user here"
        if local.startswith("temp"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server, session, envelope):
        delay = float(os.environ.get("PEER_DATA_DELAY", "0"))
        if delay:
            await asyncio.sleep(delay)
        self.n += 1
        base = os.path.join(self.out, str(self.n))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".env", "w") as f:
            f.write(envelope.mail_from + "\n" + "\n".join(envelope.rcpt_tos) + "\n")
        with open(base + ".opts", "w") as f:
            f.write(" ".join(envelope.mail_options) + "\n")
        with open(base + ".login", "w") as f:
            login = session.login_data
            f.write((login.decode() if isinstance(login, bytes) else "") + "\n")
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 queued as %d" % self.n


class No8BitHandler(Handler):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [r for r in responses if r != "250-8BITMIME"]


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    kwargs = {}
    if len(sys.argv) > 4:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        kwargs["tls_context"] = ctx
    if os.environ.get("PEER_NO_SMTPUTF8") == "1":
        kwargs["enable_SMTPUTF8"] = False
    if os.environ.get("PEER_AUTH"):
        kwargs["authenticator"] = Authenticator(out, os.environ["PEER_AUTH"])
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = os.environ.get("PEER_AUTH_PLAINTEXT") != "1"
        offered = os.environ.get("PEER_AUTH_MECHANISMS", "PLAIN LOGIN").split()
        kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m not in offered]
    CountingSMTP.sessions = Sessions(out)
    handler = No8BitHandler if os.environ.get("PEER_NO_8BITMIME") == "1" else Handler
    address = os.environ.get("PEER_ADDRESS", "127.0.0.1")
    c = CountingController(handler(out), hostname=address, port=port, **kwargs)
    c.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()


main()
