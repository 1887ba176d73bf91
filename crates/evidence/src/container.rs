//! The zip container of a bundle, read strictly before any entry is: zip readers disagree on
//! archives with two entries of one name (one reads the first, another the last), with bytes
//! before the first entry or between entries (a forged entry some readers find), and show an
//! archive comment as if it were part of the evidence. A bundle the server writes has none
//! of these, so the verifier refuses them all.

use std::io::{Read, Seek, SeekFrom};

const EOCD: u64 = 0x0605_4b50;
const ZIP64_EOCD: u64 = 0x0606_4b50;
const ZIP64_LOCATOR: u64 = 0x0706_4b50;
const CENTRAL: u64 = 0x0201_4b50;
const LOCAL: u64 = 0x0403_4b50;
const DESCRIPTOR: u64 = 0x0807_4b50;

/// The central directory of a bundle is small (a dozen entries); more is not a bundle.
const MAX_CENTRAL_BYTES: u64 = 1 << 20;

fn u16_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2).map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |s| u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut b = vec![0; len];
    r.read_exact(&mut b)?;
    Ok(b)
}

struct Entry {
    name: String,
    offset: u64,
    compressed: u64,
    descriptor: bool,
    /// Version needed, flags, method, time, date, CRC, compressed and uncompressed size as
    /// the central directory gives them (32-bit sizes as written).
    fields: [u64; 8],
    /// Version made by, disk number, internal and external attributes: fields only the
    /// central directory has, which a writer sets alike for every entry.
    made: [u64; 4],
    /// Uncompressed and compressed size, zip64 fields read.
    sizes: Option<(u64, u64)>,
}

/// What a reader that walks local headers (a streaming reader) would read differently from
/// one that reads the central directory.
fn local_differs(local: &[u8], e: &Entry) -> Option<&'static str> {
    let names = ["version", "flags", "method", "time", "date", "CRC", "compressed size", "size"];
    let at = [4, 6, 8, 10, 12, 14, 18, 22];
    for (k, (&pos, name)) in at.iter().zip(names).enumerate() {
        let local_value = if k < 5 { u16_at(local, pos) } else { u32_at(local, pos) };
        // With a data descriptor the local CRC and sizes are zero; zip64 sizes live in the
        // extra field.
        if k >= 5 && e.descriptor {
            // The local CRC and sizes of an entry with a data descriptor are zero.
            if local_value != 0 {
                return Some(name);
            }
            continue;
        }
        let zip64 = k >= 6 && (local_value == 0xffff_ffff || e.fields[k] == 0xffff_ffff);
        if !zip64 && local_value != e.fields[k] {
            return Some(name);
        }
    }
    None
}

/// The sizes (uncompressed, compressed) a header gives, with a zip64 extra block read for
/// those its 32-bit fields leave to it; `None` when that block is missing or short.
fn sizes(extra: &[u8], size32: u64, compressed32: u64) -> Option<(u64, u64)> {
    if size32 != 0xffff_ffff && compressed32 != 0xffff_ffff {
        return Some((size32, compressed32));
    }
    let mut e = 0;
    while e + 4 <= extra.len() {
        let (id, n) = (u16_at(extra, e), u16_at(extra, e + 2) as usize);
        if id == 1 {
            let body = extra.get(e + 4..e + 4 + n)?;
            let mut f = 0;
            let mut next = |v32: u64| {
                if v32 == 0xffff_ffff {
                    let v = body.get(f..f + 8).map(|b| u64_at(b, 0));
                    f += 8;
                    v
                } else {
                    Some(v32)
                }
            };
            let size = next(size32)?;
            let compressed = next(compressed32)?;
            return Some((size, compressed));
        }
        e += 4 + n;
    }
    None
}

/// Whether an extra field is a well-formed list of blocks that fills it exactly; with a data
/// descriptor, a zip64 block's sizes are zero.
fn extra_well_formed(extra: &[u8], descriptor: bool) -> bool {
    let mut e = 0;
    while e < extra.len() {
        if e + 4 > extra.len() {
            return false;
        }
        let (id, n) = (u16_at(extra, e), u16_at(extra, e + 2) as usize);
        let Some(body) = extra.get(e + 4..e + 4 + n) else { return false };
        if id == 1 && descriptor && body.iter().any(|&b| b != 0) {
            return false;
        }
        e += 4 + n;
    }
    true
}

/// What is wrong with the container, each as a sentence; empty when it is a plain archive of
/// distinct entries laid end to end. An I/O error means the bytes could not be read at all.
pub fn container_problems<R: Read + Seek>(r: &mut R) -> std::io::Result<Vec<String>> {
    let len = r.seek(SeekFrom::End(0))?;
    let mut problems = Vec::new();
    if len < 22 {
        problems.push("the archive is too short to be a zip file".into());
        return Ok(problems);
    }
    let eocd_at = len - 22;
    let eocd = read_at(r, eocd_at, 22)?;
    if u32_at(&eocd, 0) != EOCD || u16_at(&eocd, 20) != 0 {
        problems.push(
            "the archive does not end with its end-of-central-directory record: it carries a comment, or bytes were appended after it"
                .into(),
        );
        return Ok(problems);
    }
    let (mut count, mut size, mut start) = (u16_at(&eocd, 10), u32_at(&eocd, 12), u32_at(&eocd, 16));
    let mut central_end = eocd_at;
    if count == 0xffff || size == 0xffff_ffff || start == 0xffff_ffff {
        // Zip64: a locator just before the record points at the zip64 record, which follows
        // the central directory directly.
        let locator_at = eocd_at.checked_sub(20).ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let locator = read_at(r, locator_at, 20)?;
        let record_at = u64_at(&locator, 8);
        if u32_at(&locator, 0) != ZIP64_LOCATOR || record_at.checked_add(56) != Some(locator_at) {
            problems
                .push("the zip64 end record is not where its locator says, or bytes lie between them".into());
            return Ok(problems);
        }
        let record = read_at(r, record_at, 56)?;
        if u32_at(&record, 0) != ZIP64_EOCD {
            problems.push("the zip64 end record is missing".into());
            return Ok(problems);
        }
        (count, size, start) = (u64_at(&record, 32), u64_at(&record, 40), u64_at(&record, 48));
        central_end = record_at;
    }
    if start.checked_add(size) != Some(central_end) {
        problems.push(format!(
            "the central directory ({size} bytes at {start}) does not end where the end record begins ({central_end}): bytes lie between them"
        ));
        return Ok(problems);
    }
    if size > MAX_CENTRAL_BYTES {
        problems.push(format!("the central directory is {size} bytes, more than a bundle's"));
        return Ok(problems);
    }
    let central = read_at(r, start, size as usize)?;
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at < central.len() {
        if u32_at(&central, at) != CENTRAL || at + 46 > central.len() {
            problems.push(format!("the central directory is damaged at byte {at}"));
            return Ok(problems);
        }
        let flags = u16_at(&central, at + 8);
        let (name_len, extra_len, comment_len) = (
            u16_at(&central, at + 28) as usize,
            u16_at(&central, at + 30) as usize,
            u16_at(&central, at + 32) as usize,
        );
        if at + 46 + name_len + extra_len + comment_len > central.len() {
            problems
                .push(format!("the central directory is damaged at byte {at}: an entry runs past its end"));
            return Ok(problems);
        }
        let name_bytes = central.get(at + 46..at + 46 + name_len).unwrap_or_default();
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = central.get(at + 46 + name_len..at + 46 + name_len + extra_len).unwrap_or_default();
        let (mut compressed, uncompressed, mut offset) =
            (u32_at(&central, at + 20), u32_at(&central, at + 24), u32_at(&central, at + 42));
        // The zip64 extra field holds, in order, the sizes and the offset that overflowed.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let (id, n) = (u16_at(extra, e), u16_at(extra, e + 2) as usize);
            if id == 1 {
                let mut f = e + 4;
                if uncompressed == 0xffff_ffff {
                    f += 8;
                }
                if compressed == 0xffff_ffff {
                    compressed = u64_at(extra, f);
                    f += 8;
                }
                if offset == 0xffff_ffff {
                    offset = u64_at(extra, f);
                }
            }
            e += 4 + n;
        }
        if comment_len > 0 {
            problems.push(format!("{name}: the entry carries a comment"));
        }
        let fields = [
            u16_at(&central, at + 6),
            flags,
            u16_at(&central, at + 10),
            u16_at(&central, at + 12),
            u16_at(&central, at + 14),
            u32_at(&central, at + 16),
            u32_at(&central, at + 20),
            uncompressed,
        ];
        let made = [
            u16_at(&central, at + 4),
            u16_at(&central, at + 34),
            u16_at(&central, at + 36),
            u32_at(&central, at + 38),
        ];
        if !extra_well_formed(extra, false) {
            problems.push(format!("{name}: its extra field in the central directory is damaged"));
        }
        let central_sizes = sizes(extra, uncompressed, u32_at(&central, at + 20));
        if central_sizes.is_none() {
            problems.push(format!("{name}: its sizes are missing from the central directory"));
        }
        entries.push(Entry {
            name,
            offset,
            compressed,
            descriptor: flags & 8 != 0,
            fields,
            made,
            sizes: central_sizes,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    if entries.len() as u64 != count {
        problems.push(format!(
            "the end record counts {count} entries, the central directory holds {}",
            entries.len()
        ));
    }
    if let Some(first) = entries.first() {
        for e in &entries {
            if e.made[1] != 0 {
                problems.push(format!("{}: the entry says it starts on another disk", e.name));
            }
            // The writer's system (high byte) is one for all entries and its version (low
            // byte) is the version the entry needs; the attributes are alike.
            let made_by_differs = e.made[0] >> 8 != first.made[0] >> 8 || e.made[0] & 0xff != e.fields[0];
            if (made_by_differs || e.made[2..] != first.made[2..]) && e.made[1] == 0 {
                problems.push(format!(
                    "{}: its version-made-by or attributes differ from the other entries' (the central directory was edited)",
                    e.name
                ));
            }
        }
    }
    if u16_at(&eocd, 4) != 0 || u16_at(&eocd, 6) != 0 || u16_at(&eocd, 8) != u16_at(&eocd, 10) {
        problems.push("the end record names other disks: a bundle is one file".into());
    }
    let mut seen = std::collections::HashSet::new();
    for e in &entries {
        if !seen.insert(e.name.to_lowercase()) {
            problems.push(format!(
                "{}: the archive holds two entries of this name (readers disagree on which one they read)",
                e.name
            ));
        }
    }
    // Entries laid end to end from the first byte, and the central directory right after.
    entries.sort_by_key(|e| e.offset);
    let mut expected = 0u64;
    for e in &entries {
        if e.offset != expected {
            problems.push(format!(
                "{}: {} bytes lie before this entry that belong to no entry",
                e.name,
                e.offset.abs_diff(expected)
            ));
            return Ok(problems);
        }
        let local = read_at(r, e.offset, 30)?;
        if u32_at(&local, 0) != LOCAL {
            problems.push(format!("{}: no local header where the central directory says", e.name));
            return Ok(problems);
        }
        let (name_len, extra_len) = (u16_at(&local, 26), u16_at(&local, 28));
        let local_name = read_at(r, e.offset + 30, name_len as usize)?;
        let local_extra = read_at(r, e.offset + 30 + name_len, extra_len as usize)?;
        if !extra_well_formed(&local_extra, e.descriptor) {
            problems.push(format!("{}: its local extra field is damaged", e.name));
        } else if !e.descriptor && sizes(&local_extra, u32_at(&local, 22), u32_at(&local, 18)) != e.sizes {
            problems.push(format!(
                "{}: its local header gives other sizes than the central directory (readers would disagree)",
                e.name
            ));
        }
        if local_name != e.name.as_bytes() {
            problems.push(format!("{}: its local header names another file", e.name));
        }
        if let Some(field) = local_differs(&local, e) {
            problems.push(format!(
                "{}: its local header gives another {field} than the central directory (readers would disagree)",
                e.name
            ));
        }
        let mut end = e.offset + 30 + name_len + extra_len + e.compressed;
        if e.descriptor {
            // A data descriptor follows: an optional signature, the CRC and both sizes (4 or
            // 8 bytes each).
            let head = read_at(r, end, 4).map(|b| u32_at(&b, 0)).unwrap_or(0);
            let next = entries.iter().map(|x| x.offset).find(|&o| o > e.offset).unwrap_or(start);
            let base = end + if head == DESCRIPTOR { 4 } else { 0 };
            end = [base + 12, base + 20].into_iter().find(|&c| c == next).unwrap_or(base + 12);
        }
        expected = end;
    }
    if expected != start {
        problems.push(format!(
            "{} bytes lie between the last entry and the central directory",
            start.abs_diff(expected)
        ));
    }
    Ok(problems)
}
