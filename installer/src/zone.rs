//! DNS records as zone-file lines (RFC 1035 §5.1), the form every DNS provider and server
//! imports: `name. TTL IN TYPE data`, TXT data as quoted strings of at most 255 bytes each
//! (a 2048-bit DKIM key does not fit in one).

/// The TTL printed with every record: an hour, short enough to fix a mistake the same day.
pub const TTL: u32 = 3600;

/// One record line; `name` gets its trailing dot.
pub fn line(name: &str, kind: &str, data: &str) -> String {
    format!("{name}.\t{TTL}\tIN\t{kind}\t{data}")
}

/// A TXT record's data: the value cut into quoted strings of at most 255 bytes (RFC 1035
/// §3.3.14), which a resolver hands back joined.
pub fn txt(value: &str) -> String {
    let escaped: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            let text = String::from_utf8_lossy(chunk);
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect();
    escaped.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_txt_values_are_split() {
        assert_eq!(txt("v=spf1 mx -all"), "\"v=spf1 mx -all\"");
        let long = "a".repeat(300);
        assert_eq!(
            txt(&long),
            format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45))
        );
        assert_eq!(txt("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(
            line("example.org", "MX", "10 mx.example.org."),
            "example.org.\t3600\tIN\tMX\t10 mx.example.org."
        );
    }
}
