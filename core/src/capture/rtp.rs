//! RTP: recognise RTP-wrapped TS, strip its real header, follow sequence
//! numbers.

/// What a datagram's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Plain TS packets.
    Ts(&'a [u8]),
    /// TS packets inside RTP, with the RTP sequence number.
    Rtp {
        /// The TS bytes.
        ts: &'a [u8],
        /// RTP sequence number.
        seq: u16,
    },
    /// Neither.
    NotTs,
}

/// Classifies a UDP payload and finds its TS bytes.
///
/// RTP is recognised by version 2 and payload type 33 (MP2T) or a dynamic
/// type (96-127) whose payload starts with a TS sync byte; the header length
/// counts the CSRC list and the header extension, and padding is removed.
pub fn classify(p: &[u8]) -> Payload<'_> {
    if p.first() == Some(&0x47) && p.len() >= 188 {
        return Payload::Ts(p);
    }
    if p.len() < 12 + 188 || p[0] >> 6 != 2 {
        return Payload::NotTs;
    }
    let pt = p[1] & 0x7F;
    if pt != 33 && !(96..=127).contains(&pt) {
        return Payload::NotTs;
    }
    let mut header = 12 + 4 * (p[0] & 0x0F) as usize;
    if p[0] & 0x10 != 0 {
        let Some(ext) = p.get(header + 2..header + 4) else {
            return Payload::NotTs;
        };
        header += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.saturating_sub(p[p.len() - 1] as usize);
    }
    if header + 188 > end || p[header] != 0x47 {
        return Payload::NotTs;
    }
    Payload::Rtp {
        ts: &p[header..end],
        seq: u16::from_be_bytes([p[2], p[3]]),
    }
}

/// What a sequence number says about the datagrams before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next one expected (or the first).
    InOrder,
    /// This many datagrams are missing before it.
    Lost(u16),
    /// A repeat or a late arrival of one already passed.
    Late,
}

/// Follows RTP sequence numbers of one stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequence {
    last: Option<u16>,
}

impl Sequence {
    /// Checks `seq` against the last accepted one. Late and repeated
    /// datagrams do not move the expectation.
    pub fn check(&mut self, seq: u16) -> SeqCheck {
        let Some(last) = self.last else {
            self.last = Some(seq);
            return SeqCheck::InOrder;
        };
        let step = seq.wrapping_sub(last);
        if step == 0 || step >= 0x8000 {
            return SeqCheck::Late;
        }
        self.last = Some(seq);
        match step {
            1 => SeqCheck::InOrder,
            n => SeqCheck::Lost(n - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, csrc: u8, ext_words: Option<u16>, pad: u8) -> Vec<u8> {
        let mut p = vec![
            0x80 | csrc
                | if ext_words.is_some() { 0x10 } else { 0 }
                | if pad > 0 { 0x20 } else { 0 },
            pt,
            0x12,
            0x34,
        ];
        p.extend_from_slice(&[0, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF]);
        for _ in 0..csrc {
            p.extend_from_slice(&[1, 2, 3, 4]);
        }
        if let Some(words) = ext_words {
            p.extend_from_slice(&[0xBE, 0xDE]);
            p.extend_from_slice(&words.to_be_bytes());
            p.extend(std::iter::repeat_n(0xEE, 4 * words as usize));
        }
        p.extend(std::iter::repeat_n(0x47, 7 * 188));
        if pad > 0 {
            p.extend(std::iter::repeat_n(0, pad as usize - 1));
            p.push(pad);
        }
        p
    }

    #[test]
    fn strips_the_real_header_length() {
        for (csrc, ext, pad) in [(0, None, 0), (3, None, 0), (0, Some(2), 0), (2, Some(1), 4)] {
            let p = rtp(33, csrc, ext, pad);
            match classify(&p) {
                Payload::Rtp { ts, seq } => {
                    assert_eq!(ts.len(), 7 * 188, "csrc {csrc} ext {ext:?} pad {pad}");
                    assert_eq!(seq, 0x1234);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            classify(&rtp(96, 0, None, 0)),
            Payload::Rtp { .. }
        ));
        assert_eq!(
            classify(&rtp(14, 0, None, 0)),
            Payload::NotTs,
            "MPA is not TS"
        );
    }

    #[test]
    fn plain_ts_and_garbage() {
        assert!(matches!(classify(&[0x47; 1316]), Payload::Ts(_)));
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Payload::NotTs);
        assert_eq!(classify(&[0x80; 300]), Payload::NotTs);
    }

    #[test]
    fn sequence_gaps_wrap_and_late_packets() {
        let mut s = Sequence::default();
        assert_eq!(s.check(65534), SeqCheck::InOrder);
        assert_eq!(s.check(65535), SeqCheck::InOrder);
        assert_eq!(s.check(0), SeqCheck::InOrder);
        assert_eq!(s.check(3), SeqCheck::Lost(2));
        assert_eq!(s.check(2), SeqCheck::Late);
        assert_eq!(s.check(3), SeqCheck::Late);
        assert_eq!(s.check(4), SeqCheck::InOrder);
    }
}
