//! abootimg's `bootimg.cfg` format: `key = value` lines, also given one by one with `-c`.
//!
//! Reading follows abootimg 0.6 (`update_header_entry`): blanks and tabs around `=` are skipped,
//! the value is the rest of the line (trailing blanks included), `cmdline` must match exactly
//! while the other keys only need to start with their name (`name_x = ...` sets `name`), and
//! blank lines, comments and unknown keys are errors. Numbers follow `strtoul(value, NULL, 0)`:
//! `0x` is hex, a leading `0` is octal, anything else decimal. One deliberate difference: where
//! abootimg silently takes garbage as 0 (or stops at the first bad digit), bootimg reports an
//! error.

use crate::error::ConfigError;
use crate::header::{c_str, LegacyHeader, CMDLINE_SIZE, NAME_SIZE};

/// One configuration entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Size of the whole image file (0 = just what the components need).
    BootSize(u32),
    PageSize(u32),
    KernelAddr(u32),
    RamdiskAddr(u32),
    SecondAddr(u32),
    TagsAddr(u32),
    /// Already cut to 15 bytes and NUL-padded, as abootimg stores it.
    Name([u8; NAME_SIZE]),
    /// At most 511 bytes.
    Cmdline(Vec<u8>),
}

const NUMBER_KEYS: [&str; 6] = [
    "bootsize",
    "pagesize",
    "kerneladdr",
    "ramdiskaddr",
    "secondaddr",
    "tagsaddr",
];

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_blank(b)).count();
    &s[n..]
}

/// Parses a number with `strtoul(.., 0)`'s base rules, strictly: the whole value (trailing
/// blanks and a CR aside) must be digits, and it must fit in 32 bits.
pub fn parse_number(key: &'static str, value: &[u8]) -> Result<u32, ConfigError> {
    let bad = || ConfigError::BadNumber {
        key,
        value: String::from_utf8_lossy(value).into_owned(),
    };
    let trimmed = {
        let end = value
            .iter()
            .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
            .map_or(0, |i| i + 1);
        &value[..end]
    };
    let text = std::str::from_utf8(trimmed).map_err(|_| bad())?;
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    // from_str_radix alone would accept a sign.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    u32::from_str_radix(digits, radix).map_err(|_| bad())
}

/// Parses one line (without its newline).
pub fn parse_entry(line: &[u8]) -> Result<Entry, ConfigError> {
    // C string semantics: nothing after a NUL exists.
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let p = skip_blanks(line);
    let token_len = p
        .iter()
        .position(|&b| b == b'=' || is_blank(b))
        .unwrap_or(p.len());
    let (token, rest) = p.split_at(token_len);
    let bad_entry = || ConfigError::BadEntry(String::from_utf8_lossy(token).into_owned());
    let value = match skip_blanks(rest).split_first() {
        Some((b'=', value)) => skip_blanks(value),
        _ => return Err(bad_entry()),
    };
    if token == b"cmdline" {
        if value.len() >= CMDLINE_SIZE {
            return Err(ConfigError::CmdlineTooLong(value.len()));
        }
        return Ok(Entry::Cmdline(value.to_vec()));
    }
    if token.starts_with(b"name") {
        let mut name = [0u8; NAME_SIZE];
        let n = value.len().min(NAME_SIZE - 1);
        name[..n].copy_from_slice(&value[..n]);
        return Ok(Entry::Name(name));
    }
    // abootimg tests bootsize before pagesize and so on; the prefixes are disjoint anyway.
    for (i, key) in NUMBER_KEYS.into_iter().enumerate() {
        if token.starts_with(key.as_bytes()) {
            let v = parse_number(key, value)?;
            return Ok(match i {
                0 => Entry::BootSize(v),
                1 => Entry::PageSize(v),
                2 => Entry::KernelAddr(v),
                3 => Entry::RamdiskAddr(v),
                4 => Entry::SecondAddr(v),
                _ => Entry::TagsAddr(v),
            });
        }
    }
    Err(bad_entry())
}

/// Parses a whole `bootimg.cfg`; errors carry the 1-based line number.
pub fn parse_config(text: &[u8]) -> Result<Vec<Entry>, ConfigError> {
    text.split_inclusive(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            parse_entry(line).map_err(|e| ConfigError::AtLine {
                line: i + 1,
                error: Box::new(e),
            })
        })
        .collect()
}

/// Parses one `-c` argument. abootimg appends a newline to each and reads them back line by
/// line, so an argument holding newlines is several entries.
pub fn parse_arg(arg: &[u8]) -> Result<Vec<Entry>, ConfigError> {
    let mut with_newline = arg.to_vec();
    with_newline.push(b'\n');
    with_newline
        .split_inclusive(|&b| b == b'\n')
        .map(|line| parse_entry(&line[..line.len() - 1]))
        .collect()
}

/// Applies an entry to a header and to the requested image size.
pub fn apply(entry: &Entry, header: &mut LegacyHeader, bootsize: &mut u64) {
    match entry {
        Entry::BootSize(v) => *bootsize = u64::from(*v),
        Entry::PageSize(v) => header.page_size = *v,
        Entry::KernelAddr(v) => header.kernel_addr = *v,
        Entry::RamdiskAddr(v) => header.ramdisk_addr = *v,
        Entry::SecondAddr(v) => header.second_addr = *v,
        Entry::TagsAddr(v) => header.tags_addr = *v,
        Entry::Name(n) => header.name = *n,
        Entry::Cmdline(c) => {
            header.cmdline = [0; CMDLINE_SIZE];
            header.cmdline[..c.len()].copy_from_slice(c);
            // A new command line replaces all of the old one, including any mkbootimg tail.
            header.extra_cmdline.fill(0);
        }
    }
}

/// Writes the 8-line `bootimg.cfg` exactly as `abootimg -x` does; `bootsize` is the file size.
pub fn write_config(h: &LegacyHeader, bootsize: u64) -> Vec<u8> {
    let mut out = format!(
        "bootsize = {bootsize:#x}\npagesize = {:#x}\nkerneladdr = {:#x}\nramdiskaddr = {:#x}\n\
         secondaddr = {:#x}\ntagsaddr = {:#x}\nname = ",
        h.page_size, h.kernel_addr, h.ramdisk_addr, h.second_addr, h.tags_addr
    )
    .into_bytes();
    out.extend_from_slice(c_str(&h.name));
    out.extend_from_slice(b"\ncmdline = ");
    out.extend_from_slice(c_str(&h.cmdline));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_strtoul_bases() {
        assert_eq!(parse_number("k", b"0x80080000"), Ok(0x8008_0000));
        assert_eq!(parse_number("k", b"0X1f"), Ok(31));
        assert_eq!(parse_number("k", b"010"), Ok(8));
        assert_eq!(parse_number("k", b"0"), Ok(0));
        assert_eq!(parse_number("k", b"2048 \r"), Ok(2048));
        assert_eq!(parse_number("k", b"4294967295"), Ok(u32::MAX));
        for bad in [
            &b""[..],
            b"x",
            b"08",
            b"0x",
            b"-1",
            b"+1",
            b"4294967296",
            b"12abc",
            b"0x1 2",
        ] {
            assert!(parse_number("k", bad).is_err(), "{:?} accepted", bad);
        }
    }

    #[test]
    fn entries_follow_abootimg_key_rules() {
        assert_eq!(
            parse_entry(b"  kerneladdr\t=  0x10"),
            Ok(Entry::KernelAddr(16))
        );
        assert_eq!(parse_entry(b"kerneladdr=010"), Ok(Entry::KernelAddr(8)));
        assert_eq!(
            parse_entry(b"pagesizeXYZ = 4096"),
            Ok(Entry::PageSize(4096))
        );
        assert_eq!(
            parse_entry(b"cmdline = a b  "),
            Ok(Entry::Cmdline(b"a b  ".to_vec()))
        );
        assert_eq!(parse_entry(b"cmdline="), Ok(Entry::Cmdline(vec![])));
        assert_eq!(
            parse_entry(b"cmdline=a=b"),
            Ok(Entry::Cmdline(b"a=b".to_vec()))
        );
        let mut name = [0u8; 16];
        name[..15].copy_from_slice(b"0123456789abcde");
        assert_eq!(
            parse_entry(b"name = 0123456789abcdefgh"),
            Ok(Entry::Name(name))
        );
        for bad in [
            &b""[..],
            b"# comment",
            b"cmdlinex = 1",
            b"nam = x",
            b"foo = 1",
            b"kerneladdr 1",
        ] {
            assert!(
                matches!(parse_entry(bad), Err(ConfigError::BadEntry(_))),
                "{:?}",
                bad
            );
        }
        assert_eq!(
            parse_entry(&[b"cmdline=".as_slice(), &[b'x'; 511]].concat()).map(|_| ()),
            Ok(())
        );
        assert_eq!(
            parse_entry(&[b"cmdline=".as_slice(), &[b'x'; 512]].concat()),
            Err(ConfigError::CmdlineTooLong(512))
        );
    }

    #[test]
    fn files_and_args_split_like_getline() {
        assert_eq!(
            parse_config(b"pagesize = 0x800\nname = x"),
            Ok(vec![Entry::PageSize(2048), {
                let mut n = [0; 16];
                n[0] = b'x';
                Entry::Name(n)
            }])
        );
        assert_eq!(parse_config(b""), Ok(vec![]));
        assert!(matches!(
            parse_config(b"pagesize = 0x800\n\n"),
            Err(ConfigError::AtLine { line: 2, .. })
        ));
        assert_eq!(
            parse_arg(b"tagsaddr=1\nkerneladdr=2"),
            Ok(vec![Entry::TagsAddr(1), Entry::KernelAddr(2)])
        );
        assert!(parse_arg(b"").is_err());
    }

    #[test]
    fn written_config_reads_back() {
        let mut h = LegacyHeader::new();
        let mut size = 0;
        for e in
            parse_config(b"kerneladdr=0x80080000\nname=minosvm\ncmdline=console=hvc0 x=1").unwrap()
        {
            apply(&e, &mut h, &mut size);
        }
        let text = write_config(&h, 0x3800);
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            "bootsize = 0x3800\npagesize = 0x800\nkerneladdr = 0x80080000\nramdiskaddr = 0x0\n\
             secondaddr = 0x0\ntagsaddr = 0x0\nname = minosvm\ncmdline = console=hvc0 x=1\n"
        );
        let mut back = LegacyHeader::new();
        let mut back_size = 0;
        for e in parse_config(&text).unwrap() {
            apply(&e, &mut back, &mut back_size);
        }
        assert_eq!(back, h);
        assert_eq!(back_size, 0x3800);
    }
}
