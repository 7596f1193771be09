//! The test corpus: messages written with LF, stored and served as CRLF (`tests::crlf`).
//! Dovecot's answers for exactly these bytes are in refs.rs.

pub(crate) const SIMPLE: &str = r#"From: "Joe Q. Public" <john.q.public@example.com>
To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>
Cc: <boss@nil.test>, "Giant; \"Big\" Box" <sysservices@example.net>
Date: Tue, 1 Jul 2003 10:52:37 +0200
Subject: Saying Hello
Message-ID: <1234@local.machine.example>

This is a message just to say hello.
So, "Hello".
"#;

pub(crate) const COMPLEX: &str = r#"Return-Path: <sender@example.com>
Received: from mx.example.com by mail.example.org; Mon, 2 Mar 2026 10:00:00 +0000
From: Alice Example <alice@example.com>
To: Bob <bob@example.org>
Subject: Quarterly report
Date: Mon, 2 Mar 2026 09:59:58 +0000
Message-ID: <report-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer-boundary"
X-Custom: one
x-custom: two

This is the preamble, ignored by MIME readers.
--outer-boundary
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 au lait, na=EFve r=E9sum=E9.=
 Soft break joined.
--alt
Content-Type: text/html; charset=utf-8

<p>Caf&eacute;</p>
--alt--
--outer-boundary
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64
Content-Description: The report

JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCgAB
AgP/
--outer-boundary
Content-Type: message/rfc822

From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.net>
To: alice@example.com
Subject: =?UTF-8?B?RndkOiBkw6lqw6AgdnU=?=
Date: Sun, 1 Mar 2026 08:00:00 +0100
Message-ID: <inner-1@example.net>
In-Reply-To: <report-0@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=inner

--inner
Content-Type: text/plain; charset=us-ascii

Inner text.
--inner
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <logo@example.net>
Content-Language: en-GB, fr
Content-Location: http://example.net/logo.png
Content-Disposition: inline

iVBORw0KGgo=
--inner--
--outer-boundary--
This is the epilogue.
"#;

pub(crate) const NOCT: &str = r#"From: nobody@example.com
Subject: no content type

Plain body without MIME headers.
Second line.
"#;

pub(crate) const ADDRS: &str = r#"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>
Sender: "List Robot" <robot@lists.example>
Reply-To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, undisclosed-recipients:;
To: "=?utf-8?q?J=C3=BCrgen?=" <j@x.test>, root, <@route1,@route2:u@d.test>, john@x.test (John Doe)
Cc: Empty:;
Subject: =?utf-8?B?w6l0w6k=?= and
 folded   spaces
Date: Tue,
 1 Jul 2003 10:52:37 +0200
In-Reply-To: <a@b> (comment)
Message-ID:   <id@host>

x
"#;

pub(crate) const SEARCH: &str = r#"From: =?ISO-8859-1?Q?Fran=E7ois?= <francois@example.fr>
To: team@example.org
Subject: =?ISO-8859-1?Q?R=E9union_=E0?= =?UTF-8?B?UGFyaXM=?= demain
Date: Wed, 4 Mar 2026 12:00:00 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=s

--s
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

La r=E9union aura lieu =E0 l'H=D4TEL de ville.
--s
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

c2VjcmV0IG5lZWRsZSBpbiBiaW5hcnk=
--s
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

U3RyYcOfZSB1bmQgR1LDnFNTRQ==
--s--
"#;

pub(crate) const BINARY: &str = r#"Subject: binary parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=bb

--bb
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAECAwQFBgcICQoLDA0ODxAREhM=
--bb
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: Quoted-Printable

line one=0D=0Aline=20two with trailing soft=
 break and =3D sign
--bb
Content-Type: text/plain
Content-Transfer-Encoding: x-uuencode

begin 644 x
--bb
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

café 8bit
--bb--
"#;

pub(crate) const DIGEST: &str = r#"Subject: digest
Content-Type: multipart/digest; boundary=d

--d

From: one@example.com
Subject: first

first body
--d
Content-Type: message/rfc822

Subject: second
Content-Type: text/plain

second body
--d--
"#;

pub(crate) const EDGES: &str = r#"Subject: edges
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=a

--a
Content-Type: text/plain
--a
Content-Type: multipart/alternative; boundary=ab

--ab

inner1
--ab--
--a
Content-Type: multipart/related

no boundary here
--a
Content-Type: text/plain; format=flowed; name*0="long"; name*1="name.txt"
Content-Disposition: inline
Content-Language: en
Content-Location:
  http://folded.example/x

flowed
--a
Content-Type: garbage
Content-ID:  <gid@x>
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

g
--a
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

U3ViamVjdDogeAoKYm9keQo=
--a--
"#;

pub(crate) const NONMIME: &str = r#"Subject: not mime
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=x

aGVsbG8=
"#;

/// Every message, in the order of the Dovecot session that answered for them.
pub(crate) const ALL: &[(&str, &str)] = &[
    ("SIMPLE", SIMPLE),
    ("COMPLEX", COMPLEX),
    ("NOCT", NOCT),
    ("ADDRS", ADDRS),
    ("SEARCH", SEARCH),
    ("BINARY", BINARY),
    ("DIGEST", DIGEST),
    ("EDGES", EDGES),
    ("NONMIME", NONMIME),
];
