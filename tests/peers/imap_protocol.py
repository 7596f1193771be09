"""Every command and extension moat-imapd advertises, driven by Python's imaplib and checked
response by response (tests/tests/imap_protocol.rs runs this). imaplib opens the connections
(plain, STARTTLS, implicit TLS) and logs in; `run` sends a command on its socket and returns
the exact responses, so the assertions compare whole lines, literals included.

Globals set by the runner: MD (alice's Maildir), the ports in the environment."""

import imaplib
import os
import re
import socket
import ssl
import time

PORT = int(os.environ["IMAP_PORT"])
SPORT = int(os.environ["IMAPS_PORT"])
USER = "alice@example.test"
PW = "alice-secret"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE

BASE = (
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE NAMESPACE CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS "
    "STATUS=SIZE QUOTA"
)
AUTHED = BASE + " IDLE UNSELECT UIDPLUS MOVE CONDSTORE ESEARCH BINARY APPENDLIMIT=36700160"


# ---------------------------------------------------------------------------------------
# The raw exchange on an imaplib connection.


def read_response(M):
    """One response: a line, with any literal's bytes and the rest of the line joined in."""
    out = b""
    while True:
        line = M.readline()
        assert line, "connection closed after %r" % out
        out += line
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if not m:
            return out[:-2]
        out += M.read(int(m.group(1)))


def run(M, command, literal=None):
    """Sends `tag command` (a LITERAL+ literal appended when given); returns (untagged
    responses, tagged line without the tag)."""
    got_u, got_t, _ = run_tagged(M, command, literal)
    return got_u, got_t


def run_tagged(M, command, literal=None):
    tag = M._new_tag().decode()
    data = ("%s %s" % (tag, command)).encode()
    if literal is not None:
        data += b" {%d+}\r\n" % len(literal) + literal
    M.send(data + b"\r\n")
    untagged = []
    while True:
        r = read_response(M)
        if r.startswith(tag.encode() + b" "):
            return untagged, r[len(tag) + 1 :], tag
        untagged.append(r)


FAILURES = []
# A script that stops early still shows the differences found so far.
__import__("atexit").register(lambda: FAILURES and print("\n\n".join(FAILURES)))


def check(M, command, want_untagged, want_tagged, literal=None):
    """Runs a command; its responses must be exactly these (str or bytes lines; `%TAG%`
    stands for the command's tag). A mismatch is recorded and the script goes on, so one run
    shows every difference; `finish` fails if there was any."""
    got_u, got_t, tag = run_tagged(M, command, literal)

    def b(w):
        w = w.encode() if isinstance(w, str) else w
        return w.replace(b"%TAG%", tag.encode())

    want_u = [b(w) for w in want_untagged]
    want_t = b(want_tagged)
    if (got_u, got_t) != (want_u, want_t):
        FAILURES.append("%s\n got: %r %r\nwant: %r %r" % (command, got_u, got_t, want_u, want_t))
    return got_u


def check_re(M, command, patterns, want_tagged, literal=None):
    """Like `check`, with each untagged response a regular expression (bytes, whole line);
    returns the matches (None for a mismatch)."""
    got_u, got_t, tag = run_tagged(M, command, literal)
    want_t = want_tagged.encode() if isinstance(want_tagged, str) else want_tagged
    found = [re.fullmatch(p, g) for p, g in zip(patterns, got_u)]
    if len(got_u) != len(patterns) or not all(found) or got_t != want_t:
        FAILURES.append("%s\n got: %r %r\nwant: %r %r" % (command, got_u, got_t, patterns, want_t))
    return found


def finish():
    assert not FAILURES, "\n\n".join(FAILURES)


def ok(M, command, literal=None):
    """Runs a command that must succeed; its untagged responses."""
    got_u, got_t = run(M, command, literal)
    assert got_t.startswith(b"OK"), (command, got_u, got_t)
    return got_u


def connect():
    M = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
    M.login(USER, PW)
    return M


def lit(data):
    return b"{%d}\r\n" % len(data) + data


def q(s):
    return '"%s"' % s


# ---------------------------------------------------------------------------------------
# The test message: multipart/mixed, a quoted-printable text part and a forwarded
# message/rfc822, with an encoded-word subject and sender.

TOP_HDR = (
    b"From: =?UTF-8?Q?J=C3=B6rg?= <jorg@example.org>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Cc: carol@example.test\r\n"
    b"Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <mp1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
)
P1_MIME = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
P1_BODY = b"Hallo Alice, sch=C3=B6ne Gr=C3=BC=C3=9Fe.\r\nZweite Zeile."
P2_MIME = b'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="fwd.eml"\r\n\r\n'
INNER_HDR = (
    b"From: Bob <bob@example.net>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: inner note\r\n"
    b"Date: Mon, 13 Nov 2023 10:00:00 +0000\r\n"
    b"Message-ID: <inner@example.net>\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
)
INNER_BODY = b"The inner body with needle-word.\r\nSecond inner line."
INNER = INNER_HDR + INNER_BODY
TEXT = (
    b"This is a multi-part message.\r\n--outer\r\n"
    + P1_MIME
    + P1_BODY
    + b"\r\n--outer\r\n"
    + P2_MIME
    + INNER
    + b"\r\n--outer--\r\n"
)
MSG = TOP_HDR + TEXT

ENVELOPE = (
    '("Tue, 14 Nov 2023 22:13:20 +0000" "=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=" '
    '(("=?UTF-8?Q?J=C3=B6rg?=" NIL "jorg" "example.org")) '
    '(("=?UTF-8?Q?J=C3=B6rg?=" NIL "jorg" "example.org")) '
    '(("=?UTF-8?Q?J=C3=B6rg?=" NIL "jorg" "example.org")) '
    '(("Alice" NIL "alice" "example.test")) ((NIL NIL "carol" "example.test")) NIL NIL '
    '"<mp1@example.org>")'
)
INNER_ENVELOPE = (
    '("Mon, 13 Nov 2023 10:00:00 +0000" "inner note" (("Bob" NIL "bob" "example.net")) '
    '(("Bob" NIL "bob" "example.net")) (("Bob" NIL "bob" "example.net")) '
    '(("Alice" NIL "alice" "example.test")) NIL NIL NIL "<inner@example.net>")'
)


def lines(b):
    return b.count(b"\n")


P1_STRUCT = '"text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" %d %d' % (
    len(P1_BODY),
    lines(P1_BODY),
)
INNER_STRUCT = '"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d' % (
    len(INNER_BODY),
    lines(INNER_BODY),
)
BODY = '((%s)("message" "rfc822" NIL NIL NIL "7bit" %d %s (%s) %d) "mixed")' % (
    P1_STRUCT,
    len(INNER),
    INNER_ENVELOPE,
    INNER_STRUCT,
    lines(INNER),
)
BODYSTRUCTURE = (
    '((%s NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" %d %s (%s NIL NIL NIL NIL) %d '
    'NIL ("attachment" ("filename" "fwd.eml")) NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)'
    % (P1_STRUCT, len(INNER), INNER_ENVELOPE, INNER_STRUCT, lines(INNER))
)



def uidlist():
    """UID → file base name, from the server's dovecot-uidlist."""
    out = {}
    for line in open(os.path.join(MD, "dovecot-uidlist")).read().splitlines()[1:]:
        uid, _, rest = line.partition(" ")
        out[int(uid)] = rest.rpartition(":")[2]
    return out


def file_of(uid):
    """The server's file of an INBOX message: (subdir, name)."""
    base = uidlist()[uid]
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(MD, sub)):
            if name.split(":")[0] == base:
                return sub, name
    raise AssertionError("no file for UID %d" % uid)


# ---------------------------------------------------------------------------------------
# Not authenticated: greeting, CAPABILITY, ID, STARTTLS, LOGIN; SASL-IR on IMAPS.

P = imaplib.IMAP4("127.0.0.1", PORT, timeout=30)
PRE = BASE + " STARTTLS AUTH=PLAIN"
assert P.welcome == ("* OK [CAPABILITY %s] mx.example.test Moat IMAP ready." % PRE).encode(), P.welcome
check(P, "CAPABILITY", ["* CAPABILITY " + PRE], "OK CAPABILITY completed.")
# imaplib sent a CAPABILITY too; ten commands are allowed before a login.
check(P, 'ID ("name" "imap_protocol.py" "version" NIL)', ['* ID ("name" "Moat")'], "OK ID completed.")
check(P, "SELECT INBOX", [], "BAD Log in first.")
P.starttls(CTX)
check(P, "CAPABILITY", ["* CAPABILITY %s AUTH=PLAIN" % BASE], "OK CAPABILITY completed.")
check(P, "LOGIN alice@example.test wrong", [], "NO [AUTHENTICATIONFAILED] Authentication failed.")
check(P, "LOGIN alice@example.test alice-secret", [], "OK [CAPABILITY %s] Logged in." % AUTHED)
check(P, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")

S = imaplib.IMAP4_SSL("127.0.0.1", SPORT, ssl_context=CTX, timeout=30)
assert S.welcome == ("* OK [CAPABILITY %s AUTH=PLAIN] mx.example.test Moat IMAP ready." % BASE).encode(), S.welcome
token = __import__("base64").b64encode(b"\0alice@example.test\0alice-secret").decode()
check(S, "AUTHENTICATE PLAIN " + token, [], "OK [CAPABILITY %s] Logged in." % AUTHED)
check(S, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")

# ---------------------------------------------------------------------------------------
# Authenticated: CAPABILITY, ENABLE, NAMESPACE, CREATE, LIST variants, STATUS, quota, APPEND.

A = connect()
check(A, "CAPABILITY", ["* CAPABILITY " + AUTHED], "OK CAPABILITY completed.")
check(A, "ENABLE X-NOTHING", ["* ENABLED"], "OK ENABLE completed.")
check(A, "NAMESPACE", ['* NAMESPACE (("" "/")) NIL NIL'], "OK NAMESPACE completed.")
check(A, "CREATE Work/Projects", [], "OK CREATE completed.")
check(A, "CREATE Work", [], "NO [ALREADYEXISTS] Mailbox already exists.")
check(A, "SUBSCRIBE Work/Projects", [], "OK SUBSCRIBE completed.")
check(A, 'LIST "" ""', ['* LIST (\\Noselect) "/" ""'], "OK LIST completed.")
check(
    A,
    'LIST "" "*"',
    [
        '* LIST (\\HasNoChildren \\Archive) "/" Archive',
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\HasNoChildren) "/" INBOX',
        '* LIST (\\HasNoChildren \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash) "/" Trash',
        '* LIST (\\HasChildren) "/" Work',
        '* LIST (\\HasNoChildren) "/" Work/Projects',
    ],
    "OK LIST completed.",
)
check(A, 'LIST "" "W%"', ['* LIST (\\HasChildren) "/" Work'], "OK LIST completed.")
check(A, 'LIST "Work/" "%"', ['* LIST (\\HasNoChildren) "/" Work/Projects'], "OK LIST completed.")
check(
    A,
    'LIST (SUBSCRIBED) "" "W*"',
    ['* LIST (\\HasNoChildren \\Subscribed) "/" Work/Projects'],
    "OK LIST completed.",
)
check(
    A,
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
    [
        '* LIST (\\HasNoChildren \\Archive \\Subscribed) "/" Archive',
        '* LIST (\\HasNoChildren \\Drafts \\Subscribed) "/" Drafts',
        '* LIST (\\HasNoChildren \\Junk \\Subscribed) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash \\Subscribed) "/" Trash',
        '* LIST (\\HasChildren) "/" Work ("CHILDINFO" ("SUBSCRIBED"))',
    ],
    "OK LIST completed.",
)
check(
    A,
    'LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)',
    [
        '* LIST (\\HasNoChildren \\Archive) "/" Archive',
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\HasNoChildren \\Junk) "/" Junk',
        '* LIST (\\HasNoChildren \\Sent) "/" Sent',
        '* LIST (\\HasNoChildren \\Trash) "/" Trash',
    ],
    "OK LIST completed.",
)
check(
    A,
    'LIST "" ("INBOX" "Work") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))',
    [
        '* LIST (\\HasNoChildren) "/" INBOX',
        "* STATUS INBOX (MESSAGES 2 UNSEEN 2)",
        '* LIST (\\HasChildren) "/" Work',
        "* STATUS Work (MESSAGES 0 UNSEEN 0)",
    ],
    "OK LIST completed.",
)
check(A, 'LSUB "" "Work/*"', ['* LSUB () "/" Work/Projects'], "OK LSUB completed.")

# STATUS HIGHESTMODSEQ turns CONDSTORE on (RFC 7162 §3.1): asked on a connection of its own.
Z = connect()
u = ok(Z, "STATUS INBOX (UIDVALIDITY HIGHESTMODSEQ)")
m = re.fullmatch(rb"\* STATUS INBOX \(UIDVALIDITY (\d+) HIGHESTMODSEQ (\d+)\)", u[0])
assert m and len(u) == 1, u
V, HMS = int(m.group(1)), int(m.group(2))
assert V > 0 and HMS > 0, u
sizes = [os.path.getsize(os.path.join(MD, "new", f)) for f in os.listdir(os.path.join(MD, "new"))]
check(
    Z,
    "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)",
    [
        "* STATUS INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 2 HIGHESTMODSEQ %d SIZE %d)"
        % (V, HMS, sum(sizes))
    ],
    "OK STATUS completed.",
)
check(A, "STATUS Nope (MESSAGES)", [], "NO [NONEXISTENT] Mailbox doesn't exist.")
check(
    A,
    "GETQUOTAROOT INBOX",
    ['* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE %d 10240)' % ((sum(sizes) + 1023) // 1024)],
    "OK GETQUOTAROOT completed.",
)
check(A, 'GETQUOTA ""', ['* QUOTA "" (STORAGE %d 10240)' % ((sum(sizes) + 1023) // 1024)], "OK GETQUOTA completed.")

# APPEND (LITERAL+) with flags, a keyword and a date: APPENDUID; the target must exist.
check(
    A,
    'APPEND INBOX (\\Flagged $Important) "14-Nov-2023 22:13:20 +0000"',
    [],
    "OK [APPENDUID %d 3] APPEND completed." % V,
    literal=MSG,
)
check(A, "APPEND Nope", [], "NO [TRYCREATE] No such mailbox.", literal=b"Subject: x\r\n\r\nx\r\n")

# ---------------------------------------------------------------------------------------
# SELECT and FETCH of every item.

FLAGS = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important)"
PERM = "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important \\*)] Flags permitted."


def selected(exists, recent, unseen, uidnext, hms, perm=PERM, v=None, flags=FLAGS):
    out = [flags, perm, "* %d EXISTS" % exists, "* %d RECENT" % recent]
    if unseen:
        out.append("* OK [UNSEEN %d] First unseen." % unseen)
    out += [
        "* OK [UIDVALIDITY %d] UIDs valid." % (v or V),
        "* OK [UIDNEXT %d] Predicted next UID." % uidnext,
        "* OK [HIGHESTMODSEQ %d] Highest." % hms,
    ]
    return out


u = ok(Z, "STATUS INBOX (HIGHESTMODSEQ)")
HMS = int(re.search(rb"HIGHESTMODSEQ (\d+)", u[0]).group(1))
check(Z, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")
# The APPENDed message went to cur/ with its flags: \Recent are the two moved from new/.
check(A, "SELECT INBOX", selected(3, 2, 1, 4, HMS), "OK [READ-WRITE] SELECT completed.")
delivered = [open(os.path.join(MD, "cur", f), "rb").read() for f in sorted(os.listdir(os.path.join(MD, "cur")))]
one = open(os.path.join(MD, *file_of(1)), "rb").read()
check(A, "FETCH 1 (BODY.PEEK[] RFC822.SIZE)", [b"* 1 FETCH (BODY[] " + lit(one) + b" RFC822.SIZE %d)" % len(one)], "OK FETCH completed.")
check(
    A,
    "FETCH 3 (FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)",
    [
        '* 3 FETCH (FLAGS (\\Flagged $Important) UID 3 INTERNALDATE "14-Nov-2023 22:13:20 +0000" '
        "RFC822.SIZE %d ENVELOPE %s BODY %s BODYSTRUCTURE %s)" % (len(MSG), ENVELOPE, BODY, BODYSTRUCTURE)
    ],
    "OK FETCH completed.",
)
check(
    A,
    "FETCH 3 (BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] RFC822.HEADER)",
    [b"* 3 FETCH (BODY[] " + lit(MSG) + b" BODY[HEADER] " + lit(TOP_HDR) + b" BODY[TEXT] " + lit(TEXT) + b" RFC822.HEADER " + lit(TOP_HDR) + b")"],
    "OK FETCH completed.",
)
check(
    A,
    "FETCH 3 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BODY.PEEK[3])",
    [
        b"* 3 FETCH (BODY[1] " + lit(P1_BODY) + b" BODY[1.MIME] " + lit(P1_MIME) + b" BODY[2] " + lit(INNER)
        + b" BODY[2.MIME] " + lit(P2_MIME) + b" BODY[2.HEADER] " + lit(INNER_HDR) + b" BODY[2.TEXT] " + lit(INNER_BODY)
        + b" BODY[2.1] " + lit(INNER_BODY) + b' BODY[3] "")'
    ],
    "OK FETCH completed.",
)
check(
    A,
    "FETCH 3 (BODY.PEEK[HEADER.FIELDS (Subject FROM)] BODY.PEEK[HEADER.FIELDS.NOT (From To Cc Subject Date Message-ID)] BODY.PEEK[2.HEADER.FIELDS (subject)])",
    # The field names come back as the client spelled them (clients compare them).
    [
        b"* 3 FETCH (BODY[HEADER.FIELDS (Subject FROM)] "
        + lit(TOP_HDR.split(b"\r\n")[0] + b"\r\n" + TOP_HDR.split(b"\r\n")[3] + b"\r\n\r\n")
        + b" BODY[HEADER.FIELDS.NOT (From To Cc Subject Date Message-ID)] "
        + lit(b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n')
        + b" BODY[2.HEADER.FIELDS (subject)] " + lit(b"Subject: inner note\r\n\r\n") + b")"
    ],
    "OK FETCH completed.",
)
check(
    A,
    "FETCH 3 (BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<5.20> BODY.PEEK[1]<100000.5> BODY.PEEK[2.1]<4.100000>)",
    [
        b"* 3 FETCH (BODY[]<0> " + lit(MSG[:10]) + b" BODY[TEXT]<5> " + lit(TEXT[5:25])
        + b' BODY[1]<100000> "" BODY[2.1]<4> ' + lit(INNER_BODY[4:]) + b")"
    ],
    "OK FETCH completed.",
)
check(A, "FETCH 3 FLAGS", ["* 3 FETCH (FLAGS (\\Flagged $Important))"], "OK FETCH completed.")
# Non-PEEK bodies set \Seen and say so; RFC822.HEADER is a PEEK (RFC 3501 §6.4.5).
check(
    A,
    "FETCH 3 RFC822.TEXT",
    [b"* 3 FETCH (RFC822.TEXT " + lit(TEXT) + b" FLAGS (\\Flagged \\Seen $Important))"],
    "OK FETCH completed.",
)
check(A, "STORE 3 -FLAGS.SILENT (\\Seen)", [], "OK STORE completed.")
check(
    A,
    "FETCH 3 (UID RFC822)",
    [b"* 3 FETCH (UID 3 RFC822 " + lit(MSG) + b" FLAGS (\\Flagged \\Seen $Important))"],
    "OK FETCH completed.",
)
check(A, "STORE 3 -FLAGS.SILENT (\\Seen)", [], "OK STORE completed.")
check(
    A,
    "UID FETCH 3 BODY[2.HEADER.FIELDS (Subject)]",
    [b"* 3 FETCH (UID 3 BODY[2.HEADER.FIELDS (Subject)] " + lit(b"Subject: inner note\r\n\r\n") + b" FLAGS (\\Flagged \\Seen $Important))"],
    "OK FETCH completed.",
)
check(A, "FETCH 3 BODY[1]", [b"* 3 FETCH (BODY[1] " + lit(P1_BODY) + b")"], "OK FETCH completed.")
check(A, "STORE 3 -FLAGS.SILENT (\\Seen)", [], "OK STORE completed.")
check(
    A,
    "FETCH 1:2 FAST",
    [
        '* 1 FETCH (FLAGS (\\Recent) INTERNALDATE "%s" RFC822.SIZE %d)' % (time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(os.path.getmtime(os.path.join(MD, *file_of(1))))), len(one)),
        '* 2 FETCH (FLAGS (\\Recent) INTERNALDATE "%s" RFC822.SIZE %d)' % (time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(os.path.getmtime(os.path.join(MD, *file_of(2))))), os.path.getsize(os.path.join(MD, *file_of(2)))),
    ],
    "OK FETCH completed.",
)
check(A, "FETCH 4 FLAGS", [], "BAD Invalid message sequence number.")
check(A, "UID FETCH 4:9 FLAGS", [], "OK FETCH completed.")

# ---------------------------------------------------------------------------------------
# SEARCH: header, body and text keys (encoded words and quoted-printable decoded), UIDs with
# `*`, sizes, dates, OR/NOT, keywords; ESEARCH's RETURN.

check(A, "SEARCH CHARSET UTF-8 SUBJECT", ["* SEARCH 3"], "OK SEARCH completed.", literal="Grüße".encode())
check(A, 'SEARCH SUBJECT "aus k"', ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH SUBJECT hello", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH TEXT needle-word", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH TEXT hello", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH CHARSET UTF-8 BODY", ["* SEARCH 3"], "OK SEARCH completed.", literal="schöne".encode())
check(A, 'SEARCH BODY "body text 2"', ["* SEARCH 2"], "OK SEARCH completed.")
check(A, "SEARCH BODY subject", ["* SEARCH"], "OK SEARCH completed.")
check(A, "SEARCH FROM jorg@example.org", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH CHARSET UTF-8 FROM", ["* SEARCH 3"], "OK SEARCH completed.", literal="jörg".encode())
check(A, "SEARCH FROM bob", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH CC carol", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH HEADER Message-ID mp1@", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH CHARSET KOI8-R SUBJECT x", [], "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.")
check(A, "UID SEARCH UID 2:*", ["* SEARCH 2 3"], "OK SEARCH completed.")
check(A, "UID SEARCH UID 7:*", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH 2:*", ["* SEARCH 2 3"], "OK SEARCH completed.")
check(A, "SEARCH LARGER %d" % (len(MSG) - 1), ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH LARGER %d" % len(MSG), ["* SEARCH"], "OK SEARCH completed.")
check(A, "SEARCH SMALLER %d" % len(MSG), ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH BEFORE 15-Nov-2023", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH ON 14-Nov-2023", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH SINCE 15-Nov-2023", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH SENTON 14-Nov-2023", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, 'SEARCH OR SUBJECT "hello 1" FROM jorg', ["* SEARCH 1 3"], "OK SEARCH completed.")
check(A, "SEARCH NOT SUBJECT hello", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH NOT OR 1 3", ["* SEARCH 2"], "OK SEARCH completed.")
check(A, "SEARCH KEYWORD $Important", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH UNKEYWORD $important", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH KEYWORD $Unknown", ["* SEARCH"], "OK SEARCH completed.")
check(A, "SEARCH FLAGGED UNSEEN", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH RECENT", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH NEW", ["* SEARCH 1 2"], "OK SEARCH completed.")
check(A, "SEARCH ALL", ["* SEARCH 1 2 3"], "OK SEARCH completed.")
check(A, 'SEARCH HEADER Cc ""', ["* SEARCH 3"], "OK SEARCH completed.")
check(A, 'SEARCH HEADER X-Missing ""', ["* SEARCH"], "OK SEARCH completed.")
check(A, "SEARCH TEXT jorg", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH BODY jorg", ["* SEARCH"], "OK SEARCH completed.")
check(A, "SEARCH SENTSINCE 14-Nov-2023 SENTBEFORE 15-Nov-2023", ["* SEARCH 3"], "OK SEARCH completed.")
check(A, "SEARCH UNDELETED UNDRAFT UNANSWERED 2:3", ["* SEARCH 2 3"], "OK SEARCH completed.")
check(A, "SEARCH RETURN (MIN MAX COUNT ALL) ALL", ['* ESEARCH (TAG "%TAG%") MIN 1 MAX 3 COUNT 3 ALL 1:3'], "OK SEARCH completed.")
check(A, "UID SEARCH RETURN (COUNT) SUBJECT hello", ['* ESEARCH (TAG "%TAG%") UID COUNT 2'], "OK SEARCH completed.")
check(A, "SEARCH RETURN () OR 1 3", ['* ESEARCH (TAG "%TAG%") ALL 1,3'], "OK SEARCH completed.")
check(A, "UID SEARCH RETURN (MIN MAX) FROM nobody", ['* ESEARCH (TAG "%TAG%") UID'], "OK SEARCH completed.")

# ---------------------------------------------------------------------------------------
# STORE: FLAGS / +FLAGS / -FLAGS, .SILENT, UID STORE, a new keyword; flags reach file names.

# STORE's answers carry the UID even without UID STORE (clients find messages by it).
check(A, "STORE 1 FLAGS (\\Answered)", ["* 1 FETCH (UID 1 FLAGS (\\Answered \\Recent))"], "OK STORE completed.")
check(A, "STORE 1 +FLAGS.SILENT (\\Draft \\Recent)", [], "OK STORE completed.")
check(A, "STORE 1 -FLAGS (\\Answered)", ["* 1 FETCH (UID 1 FLAGS (\\Draft \\Recent))"], "OK STORE completed.")
check(
    A,
    "UID STORE 1:2 +FLAGS ($Work \\Seen)",
    [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important $Work)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important $Work \\*)] Flags permitted.",
        "* 1 FETCH (UID 1 FLAGS (\\Seen \\Draft $Work \\Recent))",
        "* 2 FETCH (UID 2 FLAGS (\\Seen $Work \\Recent))",
    ],
    "OK STORE completed.",
)
assert file_of(1)[1].endswith(":2,DSb") and file_of(2)[1].endswith(":2,Sb"), (file_of(1), file_of(2))
check(A, "STORE 2 FLAGS.SILENT (\\Seen)", [], "OK STORE completed.")
assert file_of(2)[1].endswith(":2,S"), file_of(2)
check(A, "STORE 1 FLAGS ()", ["* 1 FETCH (UID 1 FLAGS (\\Recent))"], "OK STORE completed.")
check(A, "STORE 4 +FLAGS (\\Seen)", [], "BAD Invalid message sequence number.")
check(A, "STORE 1 +FLAGS (\\Bogus)", [], "NO [CANNOT] These flags cannot be stored here: \\Bogus.")
check(A, "UID STORE 9 +FLAGS (\\Seen)", [], "OK STORE completed.")
check(A, "SEARCH SEEN", ["* SEARCH 2"], "OK SEARCH completed.")

# ---------------------------------------------------------------------------------------
# EXAMINE: read-only, changes refused, APPEND and COPY allowed, no \Seen from FETCH.

FLAGS2 = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Important $Work)"
B = connect()
vw = int(re.search(rb"UIDVALIDITY (\d+)", ok(B, "STATUS Work (UIDVALIDITY)")[0]).group(1))
found = check_re(
    B,
    "EXAMINE INBOX",
    [re.escape(x.encode()) for x in selected(3, 0, 1, 4, 0, perm="* OK [PERMANENTFLAGS ()] Flags permitted.", flags=FLAGS2)[:-1]]
    + [rb"\* OK \[HIGHESTMODSEQ (\d+)\] Highest\."],
    "OK [READ-ONLY] EXAMINE completed.",
)
READ_ONLY = "NO [READ-ONLY] The mailbox is selected read-only (EXAMINE)."
check(B, "STORE 1 +FLAGS (\\Seen)", [], READ_ONLY)
check(B, "EXPUNGE", [], READ_ONLY)
check(B, "UID EXPUNGE 1", [], READ_ONLY)
check(B, "MOVE 1 Work", [], READ_ONLY)
check(B, "FETCH 1 BODY[TEXT]", [b"* 1 FETCH (BODY[TEXT] " + lit(b"body text 1\r\n") + b")"], "OK FETCH completed.")
check(B, "FETCH 1 FLAGS", ["* 1 FETCH (FLAGS ())"], "OK FETCH completed.")
four = b"From: me@example.test\r\nSubject: four\r\n\r\nfour\r\n"
check(B, 'APPEND INBOX (\\Seen) " 2-Jan-2024 03:04:05 +0100"', ["* 4 EXISTS"], "OK [APPENDUID %d 4] APPEND completed." % V, literal=four)
check(B, "COPY 4 Work", [], "OK [COPYUID %d 4 1] COPY completed." % vw)
check(B, "CLOSE", [], "OK CLOSE completed.")
check(B, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")
check(A, "NOOP", ["* 4 EXISTS"], "OK NOOP completed.")
check(A, "UID FETCH 4 (INTERNALDATE RFC822.SIZE FLAGS)", ['* 4 FETCH (UID 4 INTERNALDATE "02-Jan-2024 02:04:05 +0000" RFC822.SIZE %d FLAGS (\\Seen))' % len(four)], "OK FETCH completed.")

# ---------------------------------------------------------------------------------------
# CONDSTORE: ENABLE, MODSEQ in FETCH, CHANGEDSINCE, UNCHANGEDSINCE and MODIFIED, .SILENT,
# SEARCH MODSEQ, STATUS HIGHESTMODSEQ; a session without CONDSTORE hears flags without MODSEQ.

C = connect()
check(C, "ENABLE CONDSTORE", ["* ENABLED CONDSTORE"], "OK ENABLE completed.")
u = ok(C, "SELECT INBOX")
hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(u)).group(1))
found = check_re(C, "FETCH 1:* (MODSEQ)", [rb"\* %d FETCH \(MODSEQ \((\d+)\)\)" % i for i in (1, 2, 3, 4)], "OK FETCH completed.")
ms = [int(f.group(1)) for f in found if f]
assert len(ms) == 4 and max(ms) == hms and ms[3] == hms and all(x > 0 for x in ms), (ms, hms)
check(C, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % (hms - 1), ["* 4 FETCH (FLAGS (\\Seen) MODSEQ (%d))" % hms], "OK FETCH completed.")
check(C, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms, [], "OK FETCH completed.")
found = check_re(C, "STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % ms[0], [rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\) MODSEQ \((\d+)\)\)"], "OK STORE completed.")
m1 = int(found[0].group(1)) if found and found[0] else 0
assert m1 > hms, (m1, hms)
found = check_re(
    C,
    "STORE 1,3 (UNCHANGEDSINCE %d) +FLAGS (\\Answered)" % ms[2],
    [rb"\* 3 FETCH \(UID 3 FLAGS \(\\Answered \\Flagged \$Important\) MODSEQ \((\d+)\)\)"],
    "OK [MODIFIED 1] Conditional STORE failed.",
)
m3 = int(found[0].group(1)) if found and found[0] else 0
found = check_re(C, "UID STORE 1 +FLAGS.SILENT (\\Answered)", [rb"\* 1 FETCH \(UID 1 MODSEQ \((\d+)\)\)"], "OK STORE completed.")
m1 = int(found[0].group(1)) if found and found[0] else 0
assert m1 > m3 > hms, (m1, m3, hms)
check(C, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m3, ["* 1 FETCH (UID 1 FLAGS (\\Answered \\Flagged) MODSEQ (%d))" % m1], "OK FETCH completed.")
check(C, "SEARCH MODSEQ %d" % m3, ["* SEARCH 1 3 (MODSEQ %d)" % m1], "OK SEARCH completed.")
check(C, "SEARCH MODSEQ %d" % (m1 + 1), ["* SEARCH"], "OK SEARCH completed.")
check(C, "SEARCH RETURN (COUNT MAX) MODSEQ %d" % m3, ['* ESEARCH (TAG "%%TAG%%") MAX 3 COUNT 2 MODSEQ %d' % m1], "OK SEARCH completed.")
check(C, 'SEARCH MODSEQ "/flags/\\\\answered" all %d' % m3, ["* SEARCH 1 3 (MODSEQ %d)" % m1], "OK SEARCH completed.")
check(C, "STORE 2 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)", [], "OK [MODIFIED 2] Conditional STORE failed.")
check(C, "UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", [], "BAD VANISHED needs QRESYNC, which is not enabled.")
check(C, "CHECK", [], "OK CHECK completed.")
check(C, "STATUS INBOX (HIGHESTMODSEQ MESSAGES)", ["* STATUS INBOX (HIGHESTMODSEQ %d MESSAGES 4)" % m1], "OK STATUS completed.")
check(
    A,
    "NOOP",
    ["* 1 FETCH (UID 1 FLAGS (\\Answered \\Flagged \\Recent))", "* 3 FETCH (UID 3 FLAGS (\\Answered \\Flagged $Important))"],
    "OK NOOP completed.",
)
check(C, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")

# ---------------------------------------------------------------------------------------
# COPY, MOVE, UID MOVE with COPYUID; TRYCREATE.

vp = int(re.search(rb"UIDVALIDITY (\d+)", ok(A, "STATUS Work/Projects (UIDVALIDITY)")[0]).group(1))
check(A, "COPY 1:2 Work", [], "OK [COPYUID %d 1:2 2:3] COPY completed." % vw)
check(A, "MOVE 2 Work/Projects", ["* OK [COPYUID %d 2 1] Moved." % vp, "* 2 EXPUNGE"], "OK MOVE completed.")
check(A, "UID MOVE 3 Work", ["* OK [COPYUID %d 3 4] Moved." % vw, "* 2 EXPUNGE"], "OK MOVE completed.")
check(A, "COPY 1 Nope", [], "NO [TRYCREATE] No such mailbox.")
check(A, "STATUS Work (MESSAGES UNSEEN UIDNEXT)", ["* STATUS Work (MESSAGES 4 UNSEEN 2 UIDNEXT 5)"], "OK STATUS completed.")
check(A, "STATUS Work/Projects (MESSAGES UNSEEN)", ["* STATUS Work/Projects (MESSAGES 1 UNSEEN 0)"], "OK STATUS completed.")
check(A, "UID FETCH 1:* (FLAGS)", ["* 1 FETCH (UID 1 FLAGS (\\Answered \\Flagged \\Recent))", "* 2 FETCH (UID 4 FLAGS (\\Seen))"], "OK FETCH completed.")

# ---------------------------------------------------------------------------------------
# EXPUNGE and UID EXPUNGE: only \\Deleted messages, only the UIDs named; highest first.

small = b"Subject: doomed\r\n\r\nx\r\n"
check(A, "APPEND INBOX (\\Deleted)", ["* 3 EXISTS"], "OK [APPENDUID %d 5] APPEND completed." % V, literal=small)
check(A, "APPEND INBOX (\\Deleted)", ["* 4 EXISTS"], "OK [APPENDUID %d 6] APPEND completed." % V, literal=small)
check(A, "STORE 1 +FLAGS.SILENT (\\Deleted)", [], "OK STORE completed.")
check(A, "UID EXPUNGE 4:5", ["* 3 EXPUNGE"], "OK EXPUNGE completed.")
check(A, "EXPUNGE", ["* 3 EXPUNGE", "* 1 EXPUNGE"], "OK EXPUNGE completed.")
check(A, "UID SEARCH ALL", ["* SEARCH 4"], "OK SEARCH completed.")

# ---------------------------------------------------------------------------------------
# UNSELECT keeps \\Deleted messages, CLOSE expunges them silently.

ok(A, "SELECT Work")
check(A, "STORE 1:2 +FLAGS.SILENT (\\Deleted)", [], "OK STORE completed.")
check(A, "UNSELECT", [], "OK UNSELECT completed.")
check(A, "FETCH 1 FLAGS", [], "BAD FETCH: no mailbox selected.")
check(A, "STATUS Work (MESSAGES)", ["* STATUS Work (MESSAGES 4)"], "OK STATUS completed.")
ok(A, "SELECT Work")
check(A, "CLOSE", [], "OK CLOSE completed.")
check(A, "STATUS Work (MESSAGES)", ["* STATUS Work (MESSAGES 2)"], "OK STATUS completed.")

# ---------------------------------------------------------------------------------------
# IDLE: a message a deliverer puts into new/ is reported within a second.

ok(A, "SELECT INBOX")
tag = A._new_tag().decode()
A.send(b"%s IDLE\r\n" % tag.encode())
assert read_response(A) == b"+ idling"
late = b"From: late@example.test\r\nSubject: late\r\n\r\nlate\r\n"
st = os.stat(MD)
name = "%d.M1P1Q1.idle,S=%d,W=%d" % (time.time(), len(late), len(late))
tmp = os.path.join(MD, "tmp", name)
with open(tmp, "wb") as f:
    f.write(late)
os.chown(tmp, st.st_uid, st.st_gid)
start = time.monotonic()
os.rename(tmp, os.path.join(MD, "new", name))
first = read_response(A)
took = time.monotonic() - start
A.send(b"DONE\r\n")
rest = []
while True:
    r = read_response(A)
    if r.startswith(tag.encode() + b" "):
        break
    rest.append(r)
assert [first] + rest == [b"* 2 EXISTS", b"* 1 RECENT"], (first, rest)
assert r == tag.encode() + b" OK IDLE terminated.", r
print("IDLE reported a delivery in %.3f s" % took)
assert took < 1.0, took
check(A, "FETCH 2 (UID FLAGS BODY.PEEK[])", [b"* 2 FETCH (UID 7 FLAGS (\\Recent) BODY[] " + lit(late) + b")"], "OK FETCH completed.")

# Another session's flag change and expunge reach an IDLE session within a second too.
D = connect()
ok(D, "SELECT INBOX")
tag = A._new_tag().decode()
A.send(b"%s IDLE\r\n" % tag.encode())
assert read_response(A) == b"+ idling"
start = time.monotonic()
ok(D, "STORE 2 +FLAGS.SILENT (\\Deleted)")
got = [read_response(A)]
flag_took = time.monotonic() - start
ok(D, "EXPUNGE")
got.append(read_response(A))
expunge_took = time.monotonic() - start
A.send(b"DONE\r\n")
assert read_response(A) == tag.encode() + b" OK IDLE terminated."
assert got == [b"* 2 FETCH (UID 7 FLAGS (\\Deleted \\Recent))", b"* 2 EXPUNGE"], got
print("IDLE reported a flag change in %.3f s, an expunge in %.3f s" % (flag_took, expunge_took))
assert flag_took < 1.0 and expunge_took < 1.0, (flag_took, expunge_took)
check(D, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")

u = ok(A, "GETQUOTAROOT Work")
assert len(u) == 2 and u[0] == b'* QUOTAROOT Work ""' and re.fullmatch(rb'\* QUOTA "" \(STORAGE \d+ 10240\)', u[1]), u
check(A, "LOGOUT", ["* BYE Logging out."], "OK LOGOUT completed.")

finish()
print("all checked")
