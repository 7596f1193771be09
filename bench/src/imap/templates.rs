//! Message shapes for the IMAP benchmark's folder: a few hundred templates (MIME structure,
//! content headers and a pre-rendered body of a drawn size), so that 50,000 varied messages are
//! written in seconds; `corpus.rs` gives each message its own envelope headers. The shapes are
//! what a real inbox holds: plain text, quoted-printable UTF-8 with encoded words, text + HTML
//! alternatives, attachments, inline images, forwarded messages, mailing-list mail.
//!
//! Every line ends in CRLF (as moat-local stores mail), so a file's size is its RFC822.SIZE.

use base64::Engine as _;

/// The word `SEARCH TEXT` looks for: in the text of about one template in eight and in some
/// subjects, never inside encoded attachments or forwarded messages (where servers might
/// legitimately disagree), so the expected number of hits is known.
pub const SEARCH_WORD: &str = "zeppelin";

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "project",
    "report",
    "budget",
    "schedule",
    "please",
    "review",
    "attached",
    "draft",
    "update",
    "team",
    "customer",
    "invoice",
    "quarter",
    "release",
    "server",
    "network",
    "thanks",
    "regards",
    "tomorrow",
    "morning",
    "afternoon",
    "agenda",
    "notes",
    "question",
    "answer",
    "deadline",
    "contract",
    "proposal",
    "design",
    "feedback",
    "issue",
    "ticket",
    "build",
    "deploy",
    "office",
    "travel",
    "hotel",
    "flight",
    "lunch",
    "dinner",
    "weekend",
    "holiday",
    "family",
    "garden",
    "weather",
    "coffee",
    "library",
    "museum",
    "concert",
    "ticket",
    "price",
    "order",
    "delivery",
    "package",
    "account",
    "password",
    "security",
    "backup",
    "storage",
    "window",
    "kitchen",
    "bicycle",
    "river",
    "mountain",
    "forest",
    "island",
    "harbour",
    "station",
    "we",
    "you",
    "they",
    "will",
    "can",
    "should",
    "would",
    "have",
    "been",
    "with",
    "from",
    "about",
    "into",
    "over",
    "after",
    "before",
    "between",
    "because",
    "although",
    "while",
    "and",
    "or",
    "but",
    "not",
    "all",
    "some",
    "every",
    "new",
    "old",
    "next",
    "last",
    "first",
    "final",
    "early",
    "late",
    "quick",
    "slow",
    "large",
    "small",
    "green",
    "blue",
    "bright",
    "quiet",
    "simple",
    "complex",
    "careful",
    "important",
    "possible",
    "ready",
    "open",
    "closed",
    "shared",
    "private",
];

/// Accented words for the quoted-printable UTF-8 shape.
const ACCENTED: &[&str] = &[
    "café",
    "crème",
    "naïve",
    "résumé",
    "Müller",
    "Straße",
    "größer",
    "señor",
    "mañana",
    "déjà",
    "über",
    "Ærø",
    "smörgåsbord",
    "façade",
    "jalapeño",
    "Zürich",
];

const NAMES: &[&str] = &[
    "Alice Martin",
    "Bob Nguyen",
    "Carol Schmidt",
    "David O'Brien",
    "Eve Tanaka",
    "Frank Rossi",
    "Grace Dubois",
    "Heidi Novak",
    "Ivan Petrov",
    "Judy Okafor",
    "Mallory Chen",
    "Niaj Kumar",
];

const DOMAINS: &[&str] = &[
    "example.com",
    "example.net",
    "example.org",
    "mail.example.co.uk",
    "corp.example",
    "lists.example.org",
    "shop.example",
    "news.example.net",
];

/// A deterministic generator (splitmix64): the same folder on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Log-uniform in `lo..hi`: many small values, a long tail, like real message sizes.
    pub fn size(&mut self, lo: usize, hi: usize) -> usize {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (lo as f64 * (hi as f64 / lo as f64).powf(unit)) as usize
    }
}

pub struct Template {
    /// Header lines after the envelope ones (MIME-Version, Content-Type, list headers ...).
    pub headers: String,
    pub body: Vec<u8>,
    pub subject: String,
    pub sender: (String, String),
    /// The body contains `SEARCH_WORD`.
    pub has_word: bool,
    /// Messages from this template are replies (In-Reply-To, References, `Re:`).
    pub reply: bool,
}

#[derive(Clone, Copy)]
enum Shape {
    Plain,
    QuotedPrintable,
    Alternative,
    Attachment,
    AlternativeWithImage,
    Forward,
    Related,
    List,
}

/// Shapes with their share of templates (in percent).
const SHAPES: &[(Shape, u64)] = &[
    (Shape::Plain, 30),
    (Shape::QuotedPrintable, 12),
    (Shape::Alternative, 25),
    (Shape::Attachment, 10),
    (Shape::AlternativeWithImage, 5),
    (Shape::Forward, 5),
    (Shape::Related, 6),
    (Shape::List, 7),
];

pub fn templates(count: usize, rng: &mut Rng) -> Vec<Template> {
    (0..count).map(|n| template(n, rng)).collect()
}

fn template(n: usize, rng: &mut Rng) -> Template {
    let mut roll = rng.next() % 100;
    let mut shape = Shape::Plain;
    for (s, share) in SHAPES {
        if roll < *share {
            shape = *s;
            break;
        }
        roll -= share;
    }
    let has_word = rng.chance(12);
    let name = rng.pick(NAMES).to_string();
    let domain = rng.pick(DOMAINS);
    let addr = format!(
        "{}{}@{domain}",
        name.split(' ').next().unwrap_or("x").to_lowercase(),
        n % 7
    );
    let subject = (0..2 + rng.below(6))
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ");
    let boundary = format!("=_bench_{n:04}_{:016x}", rng.next());
    let mut headers = String::from("MIME-Version: 1.0\r\n");
    if rng.chance(60) {
        let mailer = [
            "Thunderbird 115.4",
            "Apple Mail (2.3731)",
            "Outlook 16.0",
            "mutt 2.2.9",
        ];
        headers.push_str(&format!("X-Mailer: {}\r\n", rng.pick(&mailer)));
    }
    let body = match shape {
        Shape::Plain => {
            headers.push_str("Content-Type: text/plain; charset=us-ascii; format=flowed\r\n");
            headers.push_str("Content-Transfer-Encoding: 7bit\r\n");
            let size = rng.size(300, 8000);
            text(rng, size, has_word)
        }
        Shape::QuotedPrintable => {
            headers.push_str("Content-Type: text/plain; charset=\"UTF-8\"\r\n");
            headers.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
            let size = rng.size(500, 6000);
            quoted_printable(&accented_text(rng, size, has_word))
        }
        Shape::Alternative => {
            headers.push_str(&multipart("alternative", &boundary));
            let size = rng.size(800, 10_000);
            alternative(rng, &boundary, size, has_word)
        }
        Shape::Attachment => {
            headers.push_str(&multipart("mixed", &boundary));
            let size = rng.size(300, 3000);
            let mut body = part_text(&boundary, &text(rng, size, has_word));
            let files = 1 + rng.below(2);
            for f in 0..files {
                let kind = *rng.pick(&["application/pdf", "application/zip", "image/jpeg"]);
                let size = rng.size(4000, 120_000);
                body.push_str(&part_base64(
                    &boundary,
                    kind,
                    &format!("document-{n}-{f}.bin"),
                    "attachment",
                    rng,
                    size,
                ));
            }
            close(body, &boundary)
        }
        Shape::AlternativeWithImage => {
            headers.push_str(&multipart("mixed", &boundary));
            let inner = format!("{boundary}_alt");
            let size = rng.size(800, 6000);
            let mut body = format!(
                "--{boundary}\r\nContent-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n{}\r\n",
                alternative(rng, &inner, size, has_word)
            );
            let size = rng.size(5000, 80_000);
            body.push_str(&part_base64(
                &boundary,
                "image/png",
                &format!("photo-{n}.png"),
                "attachment",
                rng,
                size,
            ));
            close(body, &boundary)
        }
        Shape::Forward => {
            headers.push_str(&multipart("mixed", &boundary));
            let size = rng.size(200, 1500);
            let mut body = part_text(&boundary, &text(rng, size, has_word));
            let size = rng.size(500, 12_000);
            let inner_text = text(rng, size, false);
            body.push_str(&format!(
                "--{boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n\
                 From: {} <old@{}>\r\nTo: someone@example.com\r\nSubject: {}\r\n\
                 Date: Mon, 02 Jan 2023 09:00:00 +0000\r\nMessage-ID: <fwd{n}@example.com>\r\n\
                 Content-Type: text/plain; charset=us-ascii\r\n\r\n{inner_text}\r\n",
                rng.pick(NAMES),
                rng.pick(DOMAINS),
                rng.pick(WORDS),
            ));
            close(body, &boundary)
        }
        Shape::Related => {
            headers.push_str(&multipart("related", &boundary));
            let size = rng.size(1000, 8000);
            let html_body = html(&text(rng, size, has_word));
            let mut body = format!(
                "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\r\n{html_body}\r\n"
            );
            let size = rng.size(3000, 40_000);
            body.push_str(&part_base64(
                &boundary,
                "image/gif",
                &format!("logo{n}.gif"),
                "inline",
                rng,
                size,
            ));
            close(body, &boundary)
        }
        Shape::List => {
            headers.push_str(&format!(
                "List-Id: Bench discussion <bench{n}.lists.example.org>\r\n\
                 List-Unsubscribe: <mailto:leave-bench{n}@lists.example.org>\r\n\
                 List-Archive: <https://lists.example.org/archive/bench{n}/>\r\n\
                 Precedence: list\r\n\
                 DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example.org;\r\n\
                 \ts=2024; h=from:to:subject:date:message-id:list-id;\r\n\
                 \tbh={};\r\n\tb={}\r\n\
                 Content-Type: text/plain; charset=us-ascii\r\n",
                base64::engine::general_purpose::STANDARD.encode(rng.next().to_le_bytes()),
                base64::engine::general_purpose::STANDARD.encode(
                    (0..24)
                        .flat_map(|_| rng.next().to_le_bytes())
                        .collect::<Vec<u8>>()
                ),
            ));
            let size = rng.size(2000, 40_000);
            text(rng, size, has_word)
        }
    };
    Template {
        headers,
        body: body.into_bytes(),
        subject,
        sender: (name, addr),
        has_word,
        reply: rng.chance(30),
    }
}

fn multipart(subtype: &str, boundary: &str) -> String {
    format!("Content-Type: multipart/{subtype};\r\n\tboundary=\"{boundary}\"\r\n")
}

fn close(mut body: String, boundary: &str) -> String {
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

fn part_text(boundary: &str, text: &str) -> String {
    format!(
        "This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n"
    )
}

fn part_base64(
    boundary: &str,
    mime: &str,
    name: &str,
    disposition: &str,
    rng: &mut Rng,
    size: usize,
) -> String {
    let data: Vec<u8> = (0..size.div_ceil(8))
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    let mut out = format!(
        "--{boundary}\r\nContent-Type: {mime}; name=\"{name}\"\r\n\
         Content-Disposition: {disposition}; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    );
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

fn alternative(rng: &mut Rng, boundary: &str, size: usize, has_word: bool) -> String {
    let plain = text(rng, size, has_word);
    let html_body = html(&plain);
    format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{plain}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{html_body}\r\n--{boundary}--\r\n"
    )
}

/// Paragraphs of words in lines of at most 72 characters, about `size` bytes; with `word`, the
/// search word once, in the middle.
fn text(rng: &mut Rng, size: usize, word: bool) -> String {
    let mut out = String::with_capacity(size + 100);
    let mut line = String::new();
    let mut placed = !word;
    while out.len() + line.len() < size {
        let w = if !placed && out.len() >= size / 2 {
            placed = true;
            SEARCH_WORD
        } else {
            rng.pick(WORDS)
        };
        if line.len() + w.len() + 1 > 72 {
            out.push_str(&line);
            out.push_str("\r\n");
            line.clear();
            if rng.chance(15) {
                out.push_str("\r\n");
            }
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !placed {
        line.push(' ');
        line.push_str(SEARCH_WORD);
    }
    out.push_str(&line);
    out.push_str("\r\n");
    out
}

fn accented_text(rng: &mut Rng, size: usize, word: bool) -> String {
    let plain = text(rng, size, word);
    plain
        .split(' ')
        .map(|w| {
            if w.len() > 3 && !w.contains(SEARCH_WORD) && rng.chance(20) {
                rng.pick(ACCENTED).to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quoted-printable with soft breaks only at spaces, so no word is split (a server that
/// searched the raw text would still find whole words; both decode).
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10);
    for line in text.split("\r\n") {
        let mut width = 0;
        for (i, word) in line.split(' ').enumerate() {
            let mut encoded = String::new();
            for b in word.bytes() {
                if b.is_ascii_alphanumeric() || b".,-'".contains(&b) {
                    encoded.push(b as char);
                } else {
                    encoded.push_str(&format!("={b:02X}"));
                }
            }
            if i > 0 {
                if width + encoded.len() + 1 > 72 {
                    out.push_str(" =\r\n");
                    width = 0;
                } else {
                    out.push(' ');
                    width += 1;
                }
            }
            out.push_str(&encoded);
            width += encoded.len();
        }
        out.push_str("\r\n");
    }
    out
}

fn html(text: &str) -> String {
    let mut out = String::from(
        "<html><head><meta charset=\"utf-8\"><style>p { font-family: Arial, sans-serif; \
         margin: 0 0 1em 0; }</style></head>\r\n<body>\r\n",
    );
    for paragraph in text.split("\r\n\r\n") {
        out.push_str("<p>");
        out.push_str(&paragraph.replace("\r\n", "\r\n "));
        out.push_str("</p>\r\n");
    }
    out.push_str("</body></html>\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_only_and_the_word_where_promised() {
        let mut rng = Rng::new(7);
        for t in templates(300, &mut rng) {
            let all = [t.headers.as_bytes(), &t.body].concat();
            for (i, b) in all.iter().enumerate() {
                if *b == b'\n' {
                    assert_eq!(all.get(i.wrapping_sub(1)), Some(&b'\r'));
                }
            }
            let body = String::from_utf8_lossy(&t.body).to_lowercase();
            assert_eq!(body.contains(SEARCH_WORD), t.has_word);
        }
    }
}
