//! What the example plugins share: UTC calendar fields of a Unix time, and
//! `{name}` / `{name:width}` templates filled from a lookup.

/// A UTC time broken into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
}

impl Utc {
    /// The fields of `ms` milliseconds since the Unix epoch.
    pub fn from_ms(ms: u64) -> Self {
        let secs = (ms / 1000) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days to civil date (proleptic Gregorian), after H. Hinnant.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            milli: (ms % 1000) as u32,
        }
    }

    /// RFC 3339 with milliseconds: `2026-11-24T22:50:00.000Z`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.milli
        )
    }

    /// The value of a time placeholder: YYYY MM DD hh mm ss ms.
    pub fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "YYYY" => format!("{:04}", self.year),
            "MM" => format!("{:02}", self.month),
            "DD" => format!("{:02}", self.day),
            "hh" => format!("{:02}", self.hour),
            "mm" => format!("{:02}", self.minute),
            "ss" => format!("{:02}", self.second),
            "ms" => format!("{:03}", self.milli),
            _ => return None,
        })
    }
}

/// Fills `{name}` and `{name:width}` (numbers zero-padded to width) in
/// `template` from `lookup`; says which placeholder it does not know.
pub fn fill(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in {template:?}"))?
            + open;
        let spec = &rest[open + 1..close];
        let (name, width) = match spec.split_once(':') {
            Some((n, w)) => (
                n,
                w.parse::<usize>()
                    .map_err(|_| format!("bad width in {{{spec}}}"))?,
            ),
            None => (spec, 0),
        };
        let value = lookup(name).ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
        out.push_str(&format!("{value:0>width$}"));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_fields_match_known_dates() {
        // 2026-11-24T22:50:00.123Z
        let t = Utc::from_ms(1_795_560_600_123);
        assert_eq!(t.rfc3339(), "2026-11-24T22:50:00.123Z");
        assert_eq!(Utc::from_ms(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // A leap day.
        assert_eq!(
            Utc::from_ms(1_709_164_800_000).rfc3339(),
            "2024-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn templates_fill_and_pad() {
        let look = |n: &str| match n {
            "stream" => Some("ch1".to_string()),
            "sequence" => Some("42".to_string()),
            _ => None,
        };
        assert_eq!(
            fill("{stream}-{sequence:6}.ts", look).unwrap(),
            "ch1-000042.ts"
        );
        assert_eq!(
            fill("{nope}", look).unwrap_err(),
            "unknown placeholder {nope}"
        );
        assert!(fill("{stream", look).is_err());
    }
}
