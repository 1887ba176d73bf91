//! The version resource of a Windows program (`VS_VERSIONINFO` in a PE file's `.rsrc`):
//! product name, company, product and file versions, as Explorer's Details tab shows them.
//! Read from the bytes alone, on any platform, for programs that no installer registered
//! (portable programs in a user's AppData, Downloads or Desktop).

/// What a program's version resource says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// `dwFileVersionMS/LS` of `VS_FIXEDFILEINFO`: `0.80.0.0`.
    pub file_version: Option<String>,
    pub product_version_fixed: Option<String>,
    /// The string table's values (the first language).
    pub product_name: Option<String>,
    pub company_name: Option<String>,
    pub product_version: Option<String>,
    pub file_description: Option<String>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

const RT_VERSION: u32 = 16;
const FIXED_SIGNATURE: u32 = 0xFEEF_04BD;

/// The file offset of a relative virtual address, through the section table.
fn rva_to_offset(sections: &[(u32, u32, u32, u32)], rva: u32) -> Option<usize> {
    sections.iter().find_map(|&(va, vsize, raw, rawsize)| {
        let size = vsize.max(rawsize);
        (rva >= va && rva < va.checked_add(size)?).then(|| (raw + (rva - va)) as usize)
    })
}

/// The version resource of a PE file, or why there is none.
pub fn version_info(bytes: &[u8]) -> Result<VersionInfo, String> {
    if bytes.get(..2) != Some(b"MZ") {
        return Err("not a Windows program (no MZ header)".into());
    }
    let pe = u32_at(bytes, 0x3C).ok_or("truncated DOS header")? as usize;
    if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err("not a PE file (no PE signature)".into());
    }
    let sections_n = u16_at(bytes, pe + 6).ok_or("truncated COFF header")? as usize;
    let optional_size = u16_at(bytes, pe + 20).ok_or("truncated COFF header")? as usize;
    let optional = pe + 24;
    let directories = match u16_at(bytes, optional).ok_or("truncated optional header")? {
        0x10b => optional + 96,
        0x20b => optional + 112,
        m => return Err(format!("unknown optional header magic 0x{m:x}")),
    };
    let resource_rva = u32_at(bytes, directories + 2 * 8).ok_or("truncated data directories")?;
    if resource_rva == 0 {
        return Err("the program has no resources".into());
    }
    let table = optional + optional_size;
    let sections: Vec<(u32, u32, u32, u32)> = (0..sections_n.min(96))
        .filter_map(|i| {
            let s = table + i * 40;
            Some((
                u32_at(bytes, s + 12)?,
                u32_at(bytes, s + 8)?,
                u32_at(bytes, s + 20)?,
                u32_at(bytes, s + 16)?,
            ))
        })
        .collect();
    let root =
        rva_to_offset(&sections, resource_rva).ok_or("the resource directory is outside every section")?;
    // Three levels: type (RT_VERSION), name, language; the first entry of the last two.
    let entries = |dir: usize| -> Vec<(u32, u32)> {
        let named = u16_at(bytes, dir + 12).unwrap_or(0) as usize;
        let ids = u16_at(bytes, dir + 14).unwrap_or(0) as usize;
        (0..(named + ids).min(4096))
            .filter_map(|i| Some((u32_at(bytes, dir + 16 + i * 8)?, u32_at(bytes, dir + 20 + i * 8)?)))
            .collect()
    };
    let subdir = |off: u32| (off & 0x8000_0000 != 0).then(|| root + (off & 0x7FFF_FFFF) as usize);
    let version_dir = entries(root)
        .into_iter()
        .find(|(id, _)| *id == RT_VERSION)
        .and_then(|(_, off)| subdir(off))
        .ok_or("the program has no version resource")?;
    let name_dir =
        entries(version_dir).first().and_then(|(_, off)| subdir(*off)).ok_or("empty version resource")?;
    let data_entry = entries(name_dir)
        .first()
        .map(|(_, off)| root + (off & 0x7FFF_FFFF) as usize)
        .ok_or("empty version resource")?;
    let data_rva = u32_at(bytes, data_entry).ok_or("truncated resource entry")?;
    let data_size = u32_at(bytes, data_entry + 4).ok_or("truncated resource entry")? as usize;
    let data_at =
        rva_to_offset(&sections, data_rva).ok_or("the version resource is outside every section")?;
    let data = bytes.get(data_at..data_at + data_size).ok_or("the version resource is cut off")?;
    Ok(parse_version_resource(data))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A UTF-16 NUL-terminated string at `at`, and the offset after its NUL.
fn utf16z(b: &[u8], at: usize, end: usize) -> (String, usize) {
    let mut units = Vec::new();
    let mut i = at;
    while i + 1 < end {
        let u = u16::from_le_bytes([b[i], b[i + 1]]);
        i += 2;
        if u == 0 {
            break;
        }
        units.push(u);
    }
    (String::from_utf16_lossy(&units), i)
}

/// One node of the version resource tree: key, value bytes and the children's span.
fn node(b: &[u8], at: usize) -> Option<(String, usize, usize, usize, usize, u16)> {
    let len = u16_at(b, at)? as usize;
    let value_len = u16_at(b, at + 2)? as usize;
    let ty = u16_at(b, at + 4)?;
    let end = (at + len).min(b.len());
    if len < 6 || end <= at + 6 {
        return None;
    }
    let (key, after_key) = utf16z(b, at + 6, end);
    let value_at = align4(after_key);
    // Text values count UTF-16 units; binary ones bytes.
    let value_bytes = if ty == 1 { value_len * 2 } else { value_len };
    let children = align4(value_at + value_bytes).min(end);
    Some((key, value_at, value_bytes, children, end, ty))
}

/// Reads a `VS_VERSIONINFO` block.
pub fn parse_version_resource(b: &[u8]) -> VersionInfo {
    let mut info = VersionInfo::default();
    let Some((_, value_at, value_len, children, end, _)) = node(b, 0) else { return info };
    if value_len >= 52 && u32_at(b, value_at) == Some(FIXED_SIGNATURE) {
        let v = |ms: u32, ls: u32| format!("{}.{}.{}.{}", ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF);
        if let (Some(ms), Some(ls)) = (u32_at(b, value_at + 8), u32_at(b, value_at + 12)) {
            info.file_version = Some(v(ms, ls));
        }
        if let (Some(ms), Some(ls)) = (u32_at(b, value_at + 16), u32_at(b, value_at + 20)) {
            info.product_version_fixed = Some(v(ms, ls));
        }
    }
    // StringFileInfo → StringTable → String.
    let mut at = children;
    while at < end {
        let Some((key, _, _, kids, next, _)) = node(b, at) else { break };
        if key == "StringFileInfo"
            && let Some((_, _, _, strings_at, table_end, _)) = node(b, kids)
        {
            let mut s = strings_at;
            while s < table_end {
                let Some((name, value_at, value_len, _, next_s, _)) = node(b, s) else { break };
                let (value, _) = utf16z(b, value_at, (value_at + value_len).min(next_s));
                let value = value.trim().to_string();
                if !value.is_empty() {
                    match name.as_str() {
                        "ProductName" => info.product_name = Some(value),
                        "CompanyName" => info.company_name = Some(value),
                        "ProductVersion" => info.product_version = Some(value),
                        "FileDescription" => info.file_description = Some(value),
                        _ => {}
                    }
                }
                if next_s <= s {
                    break;
                }
                s = align4(next_s);
            }
        }
        if next <= at {
            break;
        }
        at = align4(next);
    }
    info
}

/// A program found outside the installer list, by its version resource.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortableProgram {
    pub path: String,
    pub product_name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

/// The user-writable folders portable programs run from, under a user's home, and how deep
/// to look in each.
const PORTABLE_DIRS: [(&[&str], usize); 3] =
    [(&["AppData", "Local", "Programs"], 3), (&["Downloads"], 1), (&["Desktop"], 1)];

/// Programs larger than this are not read (installers of whole suites).
const MAX_PROGRAM_BYTES: u64 = 256 * 1024 * 1024;

fn exes(dir: &std::path::Path, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<std::path::PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if depth > 1 {
                exes(&p, depth - 1, out);
            }
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("exe"))
            && std::fs::metadata(&p).is_ok_and(|m| m.len() <= MAX_PROGRAM_BYTES)
        {
            out.push(p);
        }
    }
}

/// Every program with a product name and version in the portable folders of `homes`.
pub fn portable_programs(homes: &[std::path::PathBuf]) -> Vec<PortableProgram> {
    let mut out = Vec::new();
    for home in homes {
        for (parts, depth) in PORTABLE_DIRS {
            let dir = parts.iter().fold(home.clone(), |p, part| p.join(part));
            let mut found = Vec::new();
            exes(&dir, depth, &mut found);
            for path in found {
                let Ok(bytes) = std::fs::read(&path) else { continue };
                let Ok(info) = version_info(&bytes) else { continue };
                let name = info.product_name.clone().or(info.file_description.clone());
                let version = info.product_version_fixed.clone().or(info.file_version.clone());
                if let (Some(product_name), Some(version)) = (name, version) {
                    out.push(PortableProgram {
                        path: path.display().to_string(),
                        product_name,
                        version,
                        company: info.company_name.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Portable programs as inventory items (manager `portable`: matched only through the
/// program table's rules, never by a guessed name).
pub fn items_of(programs: &[PortableProgram]) -> Vec<ringfence_inventory::Item> {
    let mut items: Vec<ringfence_inventory::Item> = programs
        .iter()
        .map(|p| {
            let mut i = ringfence_inventory::Item::new(
                ringfence_inventory::ItemKind::Application,
                p.product_name.clone(),
                p.version.clone(),
            );
            i.vendor = p.company.clone();
            i.manager = Some("portable".into());
            i
        })
        .collect();
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_programs_say_why() {
        assert!(version_info(b"").unwrap_err().contains("no MZ header"));
        assert!(version_info(b"#!/bin/sh\necho hi\n").unwrap_err().contains("no MZ header"));
        let mut mz = b"MZ".to_vec();
        mz.resize(0x40, 0);
        mz[0x3C] = 0x40;
        mz.extend_from_slice(b"NOPE");
        assert!(version_info(&mz).unwrap_err().contains("no PE signature"));
        mz.truncate(0x40);
        assert!(version_info(&mz).unwrap_err().contains("no PE signature"));
        assert_eq!(parse_version_resource(&[0xff; 3]), VersionInfo::default());
    }
}
