//! What Dovecot answered for `corpus::ALL`: Dovecot 2.3.19.1 (Debian 12's dovecot-imapd
//! 1:2.3.19.1+dfsg1-2.1+deb12u7), `/usr/lib/dovecot/imap` in PREAUTH mode over a Maildir
//! holding the corpus as CRLF files (UID n = `ALL[n-1]`), one FETCH per message. Values are as
//! Dovecot wrote them (its literal/quoted choices differ from ours; tests compare the decoded
//! values). To add a case: write the message to a Maildir's cur/, run that binary with a
//! private config (`mail_location = maildir:...`, `base_dir`, `ssl = no`) as an unprivileged
//! user, send `a select INBOX` and the FETCH, and paste the answer here. Dovecot also agreed on
//! ENVELOPE/BODYSTRUCTURE/BODY for mail-parser's 120 sample messages, except where tests or
//! module docs name a deliberate difference.

/// (message, item, value) for ENVELOPE, BODYSTRUCTURE and BODY.
pub(crate) const STRUCTURES: &[(&str, &str, &str)] = &[
    (
        "SIMPLE",
        "ENVELOPE",
        "(\"Tue, 1 Jul 2003 10:52:37 +0200\" \"Saying Hello\" ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) ((\"Mary Smith\" NIL \"mary\" \"x.test\")(NIL NIL \"jdoe\" \"example.org\")(\"Who?\" NIL \"one\" \"y.test\")) ((NIL NIL \"boss\" \"nil.test\")({16}\r\nGiant; \"Big\" Box NIL \"sysservices\" \"example.net\")) NIL NIL \"<1234@local.machine.example>\")",
    ),
    (
        "SIMPLE",
        "BODYSTRUCTURE",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 52 2 NIL NIL NIL NIL)",
    ),
    (
        "SIMPLE",
        "BODY",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 52 2)",
    ),
    (
        "COMPLEX",
        "ENVELOPE",
        "(\"Mon, 2 Mar 2026 09:59:58 +0000\" \"Quarterly report\" ((\"Alice Example\" NIL \"alice\" \"example.com\")) ((\"Alice Example\" NIL \"alice\" \"example.com\")) ((\"Alice Example\" NIL \"alice\" \"example.com\")) ((\"Bob\" NIL \"bob\" \"example.org\")) NIL NIL NIL \"<report-1@example.com>\")",
    ),
    (
        "COMPLEX",
        "BODYSTRUCTURE",
        "(((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL \"quoted-printable\" 57 1 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 18 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"alt\") NIL NIL NIL)(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL \"The report\" \"base64\" 78 NIL (\"attachment\" (\"filename\" \"report.pdf\")) NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 597 (\"Sun, 1 Mar 2026 08:00:00 +0100\" \"=?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\" ((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.net\")) ((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.net\")) ((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.net\")) ((NIL NIL \"alice\" \"example.com\")) NIL NIL \"<report-0@example.com>\" \"<inner-1@example.net>\") ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL)(\"image\" \"png\" NIL \"<logo@example.net>\" NIL \"base64\" 12 NIL (\"inline\" NIL) (\"en-GB\" \"fr\") \"http://example.net/logo.png\") \"mixed\" (\"boundary\" \"inner\") NIL NIL NIL) 23 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"outer-boundary\") NIL NIL NIL)",
    ),
    (
        "COMPLEX",
        "BODY",
        "(((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL \"quoted-printable\" 57 1)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 18 0) \"alternative\")(\"application\" \"pdf\" (\"name\" \"report.pdf\") NIL \"The report\" \"base64\" 78)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 597 (\"Sun, 1 Mar 2026 08:00:00 +0100\" \"=?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\" ((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.net\")) ((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.net\")) ((\"=?ISO-8859-1?Q?Andr=E9?=\" NIL \"andre\" \"example.net\")) ((NIL NIL \"alice\" \"example.com\")) NIL NIL \"<report-0@example.com>\" \"<inner-1@example.net>\") ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0)(\"image\" \"png\" NIL \"<logo@example.net>\" NIL \"base64\" 12) \"mixed\") 23) \"mixed\")",
    ),
    (
        "NOCT",
        "ENVELOPE",
        "(NIL \"no content type\" ((NIL NIL \"nobody\" \"example.com\")) ((NIL NIL \"nobody\" \"example.com\")) ((NIL NIL \"nobody\" \"example.com\")) NIL NIL NIL NIL NIL)",
    ),
    (
        "NOCT",
        "BODYSTRUCTURE",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 48 2 NIL NIL NIL NIL)",
    ),
    (
        "NOCT",
        "BODY",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 48 2)",
    ),
    (
        "ADDRS",
        "ENVELOPE",
        "(\"Tue, 1 Jul 2003 10:52:37 +0200\" {38}\r\n=?utf-8?B?w6l0w6k=?= and folded spaces ((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"dkuug.dk\")) ((\"List Robot\" NIL \"robot\" \"lists.example\")) ((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)(NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((\"=?utf-8?q?J=C3=BCrgen?=\" NIL \"j\" \"x.test\")(NIL NIL \"root\" \"MISSING_DOMAIN\")(NIL \"@route1,@route2\" \"u\" \"d.test\")(\"John Doe\" NIL \"john\" \"x.test\")) ((NIL NIL \"Empty\" NIL)(NIL NIL NIL NIL)) NIL \"<a@b> (comment)\" \"<id@host>\")",
    ),
    (
        "ADDRS",
        "BODYSTRUCTURE",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)",
    ),
    (
        "ADDRS",
        "BODY",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1)",
    ),
    (
        "SEARCH",
        "ENVELOPE",
        "(\"Wed, 4 Mar 2026 12:00:00 +0100\" \"=?ISO-8859-1?Q?R=E9union_=E0?= =?UTF-8?B?UGFyaXM=?= demain\" ((\"=?ISO-8859-1?Q?Fran=E7ois?=\" NIL \"francois\" \"example.fr\")) ((\"=?ISO-8859-1?Q?Fran=E7ois?=\" NIL \"francois\" \"example.fr\")) ((\"=?ISO-8859-1?Q?Fran=E7ois?=\" NIL \"francois\" \"example.fr\")) ((NIL NIL \"team\" \"example.org\")) NIL NIL NIL NIL)",
    ),
    (
        "SEARCH",
        "BODYSTRUCTURE",
        "((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL \"quoted-printable\" 46 0 NIL NIL NIL NIL)(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 32 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 28 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"s\") NIL NIL NIL)",
    ),
    (
        "SEARCH",
        "BODY",
        "((\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL \"quoted-printable\" 46 0)(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 32)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"base64\" 28 0) \"mixed\")",
    ),
    (
        "BINARY",
        "ENVELOPE",
        "(NIL \"binary parts\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    ),
    (
        "BINARY",
        "BODYSTRUCTURE",
        "((\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 28 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"Quoted-Printable\" 65 1 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"x-uuencode\" 11 0 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 10 0 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"bb\") NIL NIL NIL)",
    ),
    (
        "BINARY",
        "BODY",
        "((\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 28)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"Quoted-Printable\" 65 1)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"x-uuencode\" 11 0)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"8bit\" 10 0) \"mixed\")",
    ),
    (
        "DIGEST",
        "ENVELOPE",
        "(NIL \"digest\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    ),
    (
        "DIGEST",
        "BODYSTRUCTURE",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 51 (NIL \"first\" ((NIL NIL \"one\" \"example.com\")) ((NIL NIL \"one\" \"example.com\")) ((NIL NIL \"one\" \"example.com\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 56 (NIL \"second\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) \"digest\" (\"boundary\" \"d\") NIL NIL NIL)",
    ),
    (
        "DIGEST",
        "BODY",
        "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 51 (NIL \"first\" ((NIL NIL \"one\" \"example.com\")) ((NIL NIL \"one\" \"example.com\")) ((NIL NIL \"one\" \"example.com\")) NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0) 3)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 56 (NIL \"second\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0) 3) \"digest\")",
    ),
    (
        "EDGES",
        "ENVELOPE",
        "(NIL \"edges\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    ),
    (
        "EDGES",
        "BODYSTRUCTURE",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"ab\") NIL NIL NIL)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) \"related\" NIL NIL NIL NIL)(\"text\" \"plain\" (\"format\" \"flowed\" \"name\" \"longname.txt\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0 NIL (\"inline\" NIL) (\"en\") \"  http://folded.example/x\")(\"garbage\" \"\" NIL \"<gid@x>\" NIL \"7bit\" 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 26 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"a\") NIL NIL NIL)",
    ),
    (
        "EDGES",
        "BODY",
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0) \"alternative\")((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"related\")(\"text\" \"plain\" (\"format\" \"flowed\" \"name\" \"longname.txt\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 0)(\"garbage\" \"\" NIL \"<gid@x>\" NIL \"7bit\" 1)(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 26 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) 1) \"mixed\")",
    ),
    (
        "NONMIME",
        "ENVELOPE",
        "(NIL \"not mime\" NIL NIL NIL NIL NIL NIL NIL NIL)",
    ),
    (
        "NONMIME",
        "BODYSTRUCTURE",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL)",
    ),
    (
        "NONMIME",
        "BODY",
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1)",
    ),
];

/// (message, item, value) for BODY[section] and BINARY[part]; `{0}` also stands for a
/// section that does not exist (Dovecot sends an empty string then).
pub(crate) const SECTIONS: &[(&str, &str, &str)] = &[
    (
        "COMPLEX",
        "BODY[]",
        "{1718}\r\nReturn-Path: <sender@example.com>\r\nReceived: from mx.example.com by mail.example.org; Mon, 2 Mar 2026 10:00:00 +0000\r\nFrom: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Quarterly report\r\nDate: Mon, 2 Mar 2026 09:59:58 +0000\r\nMessage-ID: <report-1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer-boundary\"\r\nX-Custom: one\r\nx-custom: two\r\n\r\nThis is the preamble, ignored by MIME readers.\r\n--outer-boundary\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait, na=EFve r=E9sum=E9.=\r\n Soft break joined.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf&eacute;</p>\r\n--alt--\r\n--outer-boundary\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Description: The report\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCgAB\r\nAgP/\r\n--outer-boundary\r\nContent-Type: message/rfc822\r\n\r\nFrom: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\r\nDate: Sun, 1 Mar 2026 08:00:00 +0100\r\nMessage-ID: <inner-1@example.net>\r\nIn-Reply-To: <report-0@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nInner text.\r\n--inner\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@example.net>\r\nContent-Language: en-GB, fr\r\nContent-Location: http://example.net/logo.png\r\nContent-Disposition: inline\r\n\r\niVBORw0KGgo=\r\n--inner--\r\n--outer-boundary--\r\nThis is the epilogue.\r\n",
    ),
    (
        "COMPLEX",
        "BODY[HEADER]",
        "{396}\r\nReturn-Path: <sender@example.com>\r\nReceived: from mx.example.com by mail.example.org; Mon, 2 Mar 2026 10:00:00 +0000\r\nFrom: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Quarterly report\r\nDate: Mon, 2 Mar 2026 09:59:58 +0000\r\nMessage-ID: <report-1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer-boundary\"\r\nX-Custom: one\r\nx-custom: two\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[TEXT]",
        "{1322}\r\nThis is the preamble, ignored by MIME readers.\r\n--outer-boundary\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait, na=EFve r=E9sum=E9.=\r\n Soft break joined.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf&eacute;</p>\r\n--alt--\r\n--outer-boundary\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Description: The report\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCgAB\r\nAgP/\r\n--outer-boundary\r\nContent-Type: message/rfc822\r\n\r\nFrom: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\r\nDate: Sun, 1 Mar 2026 08:00:00 +0100\r\nMessage-ID: <inner-1@example.net>\r\nIn-Reply-To: <report-0@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nInner text.\r\n--inner\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@example.net>\r\nContent-Language: en-GB, fr\r\nContent-Location: http://example.net/logo.png\r\nContent-Disposition: inline\r\n\r\niVBORw0KGgo=\r\n--inner--\r\n--outer-boundary--\r\nThis is the epilogue.\r\n",
    ),
    (
        "COMPLEX",
        "BODY[1]",
        "{237}\r\n--alt\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait, na=EFve r=E9sum=E9.=\r\n Soft break joined.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf&eacute;</p>\r\n--alt--\r\n",
    ),
    (
        "COMPLEX",
        "BODY[1.1]",
        "{57}\r\nCaf=E9 au lait, na=EFve r=E9sum=E9.=\r\n Soft break joined.",
    ),
    ("COMPLEX", "BODY[1.2]", "{18}\r\n<p>Caf&eacute;</p>"),
    (
        "COMPLEX",
        "BODY[1.MIME]",
        "{55}\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[2]",
        "{78}\r\nJVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCgAB\r\nAgP/",
    ),
    (
        "COMPLEX",
        "BODY[2.MIME]",
        "{176}\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-Description: The report\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[3]",
        "{597}\r\nFrom: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\r\nDate: Sun, 1 Mar 2026 08:00:00 +0100\r\nMessage-ID: <inner-1@example.net>\r\nIn-Reply-To: <report-0@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nInner text.\r\n--inner\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@example.net>\r\nContent-Language: en-GB, fr\r\nContent-Location: http://example.net/logo.png\r\nContent-Disposition: inline\r\n\r\niVBORw0KGgo=\r\n--inner--\r\n",
    ),
    (
        "COMPLEX",
        "BODY[3.MIME]",
        "{32}\r\nContent-Type: message/rfc822\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[3.HEADER]",
        "{296}\r\nFrom: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\r\nDate: Sun, 1 Mar 2026 08:00:00 +0100\r\nMessage-ID: <inner-1@example.net>\r\nIn-Reply-To: <report-0@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[3.TEXT]",
        "{301}\r\n--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nInner text.\r\n--inner\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@example.net>\r\nContent-Language: en-GB, fr\r\nContent-Location: http://example.net/logo.png\r\nContent-Disposition: inline\r\n\r\niVBORw0KGgo=\r\n--inner--\r\n",
    ),
    ("COMPLEX", "BODY[3.1]", "{11}\r\nInner text."),
    ("COMPLEX", "BODY[3.2]", "{12}\r\niVBORw0KGgo="),
    (
        "COMPLEX",
        "BODY[3.2.MIME]",
        "{199}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@example.net>\r\nContent-Language: en-GB, fr\r\nContent-Location: http://example.net/logo.png\r\nContent-Disposition: inline\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[3.1.MIME]",
        "{46}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[3.HEADER.FIELDS (SUBJECT FROM)]",
        "{97}\r\nFrom: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>\r\nSubject: =?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[HEADER.FIELDS (X-CUSTOM SUBJECT)]",
        "{59}\r\nSubject: Quarterly report\r\nX-Custom: one\r\nx-custom: two\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH X-CUSTOM CONTENT-TYPE MIME-VERSION MESSAGE-ID DATE)]",
        "{97}\r\nFrom: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Quarterly report\r\n\r\n",
    ),
    (
        "COMPLEX",
        "BODY[1.1.1]",
        "{57}\r\nCaf=E9 au lait, na=EFve r=E9sum=E9.=\r\n Soft break joined.",
    ),
    ("COMPLEX", "BODY[1.1.1.1]", "{0}\r\n"),
    (
        "COMPLEX",
        "BODY[2.1]",
        "{78}\r\nJVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCgAB\r\nAgP/",
    ),
    ("COMPLEX", "BODY[3.1.1]", "{11}\r\nInner text."),
    ("COMPLEX", "BODY[4]", "{0}\r\n"),
    ("COMPLEX", "BODY[2.HEADER]", "{0}\r\n"),
    ("COMPLEX", "BODY[3.3]", "{0}\r\n"),
    (
        "SIMPLE",
        "BODY[1]",
        "{52}\r\nThis is a message just to say hello.\r\nSo, \"Hello\".\r\n",
    ),
    (
        "SIMPLE",
        "BODY[1.MIME]",
        "{292}\r\nFrom: \"Joe Q. Public\" <john.q.public@example.com>\r\nTo: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\nCc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\nSubject: Saying Hello\r\nMessage-ID: <1234@local.machine.example>\r\n\r\n",
    ),
    ("SIMPLE", "BODY[1.1]", "{0}\r\n"),
    ("SIMPLE", "BODY[1.1.1]", "{0}\r\n"),
    ("SIMPLE", "BODY[1.HEADER]", "{0}\r\n"),
    ("SIMPLE", "BODY[1.TEXT]", "{0}\r\n"),
    ("SIMPLE", "BODY[2]", "{0}\r\n"),
    ("SIMPLE", "BODY[2.1.MIME]", "{0}\r\n"),
    ("SIMPLE", "BODY[3]", "{0}\r\n"),
    ("SIMPLE", "BODY[3.1]", "{0}\r\n"),
    ("SIMPLE", "BODY[6.1]", "{0}\r\n"),
    ("SIMPLE", "BODY[6.HEADER]", "{0}\r\n"),
    ("SIMPLE", "BODY[6.TEXT]", "{0}\r\n"),
    ("SIMPLE", "BODY[HEADER.FIELDS (NOPE)]", "{2}\r\n\r\n"),
    (
        "NOCT",
        "BODY[1]",
        "{48}\r\nPlain body without MIME headers.\r\nSecond line.\r\n",
    ),
    (
        "NOCT",
        "BODY[1.MIME]",
        "{54}\r\nFrom: nobody@example.com\r\nSubject: no content type\r\n\r\n",
    ),
    ("NOCT", "BODY[1.1]", "{0}\r\n"),
    ("NOCT", "BODY[1.1.1]", "{0}\r\n"),
    ("NOCT", "BODY[1.HEADER]", "{0}\r\n"),
    ("NOCT", "BODY[1.TEXT]", "{0}\r\n"),
    ("NOCT", "BODY[2]", "{0}\r\n"),
    ("NOCT", "BODY[2.1.MIME]", "{0}\r\n"),
    ("NOCT", "BODY[3]", "{0}\r\n"),
    ("NOCT", "BODY[3.1]", "{0}\r\n"),
    ("NOCT", "BODY[6.1]", "{0}\r\n"),
    ("NOCT", "BODY[6.HEADER]", "{0}\r\n"),
    ("NOCT", "BODY[6.TEXT]", "{0}\r\n"),
    ("NOCT", "BODY[HEADER.FIELDS (NOPE)]", "{2}\r\n\r\n"),
    (
        "DIGEST",
        "BODY[1]",
        "{51}\r\nFrom: one@example.com\r\nSubject: first\r\n\r\nfirst body",
    ),
    ("DIGEST", "BODY[1.MIME]", "{2}\r\n\r\n"),
    ("DIGEST", "BODY[1.1]", "{10}\r\nfirst body"),
    ("DIGEST", "BODY[1.1.1]", "{0}\r\n"),
    (
        "DIGEST",
        "BODY[1.HEADER]",
        "{41}\r\nFrom: one@example.com\r\nSubject: first\r\n\r\n",
    ),
    ("DIGEST", "BODY[1.TEXT]", "{10}\r\nfirst body"),
    (
        "DIGEST",
        "BODY[2]",
        "{56}\r\nSubject: second\r\nContent-Type: text/plain\r\n\r\nsecond body",
    ),
    (
        "DIGEST",
        "BODY[2.1.MIME]",
        "{45}\r\nSubject: second\r\nContent-Type: text/plain\r\n\r\n",
    ),
    ("DIGEST", "BODY[3]", "{0}\r\n"),
    ("DIGEST", "BODY[3.1]", "{0}\r\n"),
    ("DIGEST", "BODY[6.1]", "{0}\r\n"),
    ("DIGEST", "BODY[6.HEADER]", "{0}\r\n"),
    ("DIGEST", "BODY[6.TEXT]", "{0}\r\n"),
    ("DIGEST", "BODY[HEADER.FIELDS (NOPE)]", "{2}\r\n\r\n"),
    ("EDGES", "BODY[1]", "{0}\r\n"),
    ("EDGES", "BODY[1.MIME]", "{24}\r\nContent-Type: text/plain"),
    ("EDGES", "BODY[1.1]", "{0}\r\n"),
    ("EDGES", "BODY[1.1.1]", "{0}\r\n"),
    ("EDGES", "BODY[1.HEADER]", "{0}\r\n"),
    ("EDGES", "BODY[1.TEXT]", "{0}\r\n"),
    (
        "EDGES",
        "BODY[2]",
        "{24}\r\n--ab\r\n\r\ninner1\r\n--ab--\r\n",
    ),
    ("EDGES", "BODY[2.1.MIME]", "{2}\r\n\r\n"),
    ("EDGES", "BODY[3]", "{16}\r\nno boundary here"),
    ("EDGES", "BODY[3.1]", "{0}\r\n"),
    ("EDGES", "BODY[6.1]", "{0}\r\n"),
    (
        "EDGES",
        "BODY[6.HEADER]",
        "{24}\r\nU3ViamVjdDogeAoKYm9keQo=",
    ),
    ("EDGES", "BODY[6.TEXT]", "{0}\r\n"),
    ("EDGES", "BODY[HEADER.FIELDS (NOPE)]", "{2}\r\n\r\n"),
    (
        "BINARY",
        "BINARY[1]",
        "~{20}\r\n\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13",
    ),
    (
        "BINARY",
        "BINARY[2]",
        "~{54}\r\nline one\r\nline two with trailing soft break and = sign",
    ),
    ("BINARY", "BINARY[4]", "{10}\r\ncafé 8bit"),
];
