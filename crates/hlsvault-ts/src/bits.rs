//! Reading NAL unit payloads bit by bit (H.264/HEVC 7.2, 9.1): fixed-width
//! fields and Exp-Golomb codes, with emulation prevention bytes
//! (`00 00 03`) skipped as they come. Every read past the end is `None`,
//! never a panic.

/// A reader of bits, most significant first, over NAL unit bytes.
///
/// ```
/// use hlsvault_ts::bits::BitReader;
/// // 00 00 03 80: the 03 is not data; then ue "1" = 0.
/// let mut r = BitReader::new(&[0, 0, 3, 0x80]);
/// assert_eq!(r.bits(16), Some(0));
/// assert_eq!(r.ue(), Some(0));
/// ```
pub struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
    bit: u8,
    zeros: u8,
    cur: u8,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader {
            bytes,
            at: 0,
            bit: 8,
            zeros: 0,
            cur: 0,
        }
    }

    /// One bit, 0 or 1.
    pub fn bit(&mut self) -> Option<u32> {
        if self.bit == 8 {
            let mut b = *self.bytes.get(self.at)?;
            self.at += 1;
            if self.zeros >= 2 && b == 3 {
                b = *self.bytes.get(self.at)?;
                self.at += 1;
                self.zeros = 0;
            }
            self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
            self.cur = b;
            self.bit = 0;
        }
        let v = (self.cur >> (7 - self.bit)) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }

    /// A flag.
    pub fn flag(&mut self) -> Option<bool> {
        Some(self.bit()? == 1)
    }

    /// `n` bits (at most 32) as a number.
    pub fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = v << 1 | u64::from(self.bit()?);
        }
        Some(v as u32)
    }

    /// ue(v): unsigned Exp-Golomb (at most 32 bits of value).
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v: u64 = 1;
        for _ in 0..zeros {
            v = v << 1 | u64::from(self.bit()?);
        }
        Some((v - 1) as u32)
    }

    /// se(v): signed Exp-Golomb.
    pub fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_their_signs_and_emulation_prevention() {
        // 1 | 010 | 011 | 00100 | 00101: ue 0, 1, 2, 3, then se of 4 = -2.
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        let codes = [r.ue(), r.ue(), r.ue(), r.ue()];
        assert_eq!(codes, [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(r.se(), Some(-2));
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), None, "past the end");
        let mut r = BitReader::new(&[0, 0, 3, 0x80]);
        for _ in 0..16 {
            assert_eq!(r.bit(), Some(0));
        }
        assert_eq!(r.ue(), Some(0));
        assert_eq!(BitReader::new(&[0b0010_1000]).se(), Some(-2));
    }
}
