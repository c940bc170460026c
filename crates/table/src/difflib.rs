//! Python's `difflib.SequenceMatcher` (no junk function, autojunk on) and `get_close_matches`,
//! reproduced exactly: ward-name and variable-name decisions sit on thresholds, so they must
//! agree with ChatMRPT's to the last bit. The one port in the workspace.

use std::collections::HashMap;

/// `difflib.SequenceMatcher(None, a, b).ratio()` (no junk function, autojunk on).
pub fn sequence_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    SequenceMatcher::new(&b).ratio(&a)
}

/// The part of SequenceMatcher that depends on `b` (difflib caches it the same way:
/// `get_close_matches` sets seq2 once and varies seq1).
pub struct SequenceMatcher<'b> {
    b: &'b [char],
    b2j: HashMap<char, Vec<usize>>,
    /// `b2j` as a table indexed by code point when `b` is ASCII.
    b2j_ascii: Option<Vec<Vec<usize>>>,
    /// Reused buffers of `matches` (j2len rows, touched positions, the block queue).
    buffers: std::cell::RefCell<Buffers>,
    /// Character counts of `b`, for quick_ratio.
    fullbcount: HashMap<char, usize>,
    /// The same counts as an array when `b` is ASCII (the common case, and much faster);
    /// quick_ratio borrows it, decrementing and then restoring.
    ascii_counts: Option<std::cell::RefCell<[i32; 128]>>,
}

impl<'b> SequenceMatcher<'b> {
    /// Prepares `b` (difflib's `set_seq2`): the sequence compared against many `a`s.
    pub fn new(b: &'b [char]) -> Self {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, &c) in b.iter().enumerate() {
            b2j.entry(c).or_default().push(j);
        }
        let mut fullbcount = HashMap::new();
        for (&c, v) in &b2j {
            fullbcount.insert(c, v.len());
        }
        // autojunk: in sequences of 200+ items, items making up more than 1% are "popular" and
        // dropped from b2j (but not junk, so matches may still extend over them).
        let n = b.len();
        if n >= 200 {
            let ntest = n / 100 + 1;
            b2j.retain(|_, v| v.len() <= ntest);
        }
        let ascii_counts = b.iter().all(char::is_ascii).then(|| {
            let mut counts = [0i32; 128];
            for &c in b {
                counts[c as usize] += 1;
            }
            std::cell::RefCell::new(counts)
        });
        let b2j_ascii = b.iter().all(char::is_ascii).then(|| {
            let mut t = vec![Vec::new(); 128];
            for (&c, v) in &b2j {
                t[c as usize] = v.clone();
            }
            t
        });
        let buffers = std::cell::RefCell::new(Buffers {
            j2len: vec![0; n + 1],
            scratch: vec![0; n + 1],
            touched: Vec::new(),
            touched_new: Vec::new(),
            queue: Vec::new(),
        });
        SequenceMatcher {
            b,
            b2j,
            b2j_ascii,
            buffers,
            fullbcount,
            ascii_counts,
        }
    }

    /// difflib's `find_longest_match`. `j2len[j + 1]` holds the length of the match ending at
    /// `b[j]` for the previous `i` (difflib's dict); `scratch` holds the row being built.
    #[allow(clippy::too_many_arguments)]
    fn find_longest_match(
        &self,
        a: &[char],
        (alo, ahi, blo, bhi): (usize, usize, usize, usize),
        j2len: &mut Vec<usize>,
        scratch: &mut Vec<usize>,
        touched: &mut Vec<usize>,
        touched_new: &mut Vec<usize>,
    ) -> (usize, usize, usize) {
        let b = self.b;
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0usize);
        for &t in touched.iter() {
            j2len[t] = 0;
        }
        touched.clear();
        for (i, ch) in a.iter().enumerate().take(ahi).skip(alo) {
            touched_new.clear();
            let js = match &self.b2j_ascii {
                Some(t) => t.get(*ch as usize).map(Vec::as_slice),
                None => self.b2j.get(ch).map(Vec::as_slice),
            };
            if let Some(js) = js {
                for &j in js {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j2len[j] + 1;
                    scratch[j + 1] = k;
                    touched_new.push(j + 1);
                    if k > bestsize {
                        besti = i + 1 - k;
                        bestj = j + 1 - k;
                        bestsize = k;
                    }
                }
            }
            for &t in touched.iter() {
                j2len[t] = 0;
            }
            std::mem::swap(j2len, scratch);
            std::mem::swap(touched, touched_new);
        }
        // No junk set (isjunk is None), so only the first pair of difflib's extension loops can
        // fire; they pick up popular characters next to the match.
        while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && a[besti + bestsize] == b[bestj + bestsize]
        {
            bestsize += 1;
        }
        (besti, bestj, bestsize)
    }

    /// Every matching block `(i, j, k)` (`a[i..i+k] == b[j..j+k]`), in difflib's recursion order.
    fn for_each_block(&self, a: &[char], mut f: impl FnMut(usize, usize, usize)) {
        let lb = self.b.len();
        let mut guard = self.buffers.borrow_mut();
        let Buffers {
            j2len,
            scratch,
            touched,
            touched_new,
            queue,
        } = &mut *guard;
        queue.clear();
        queue.push((0, a.len(), 0, lb));
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.find_longest_match(
                a,
                (alo, ahi, blo, bhi),
                j2len,
                scratch,
                touched,
                touched_new,
            );
            if k > 0 {
                f(i, j, k);
                if alo < i && blo < j {
                    queue.push((alo, i, blo, j));
                }
                if i + k < ahi && j + k < bhi {
                    queue.push((i + k, ahi, j + k, bhi));
                }
            }
        }
    }

    fn matches(&self, a: &[char]) -> usize {
        let mut total = 0;
        self.for_each_block(a, |_, _, k| total += k);
        total
    }

    /// `get_matching_blocks()` without difflib's closing `(len(a), len(b), 0)` sentinel: the
    /// blocks sorted, adjacent ones merged.
    pub fn matching_blocks(&self, a: &[char]) -> Vec<(usize, usize, usize)> {
        let mut blocks = Vec::new();
        self.for_each_block(a, |i, j, k| blocks.push((i, j, k)));
        blocks.sort_unstable();
        let mut merged: Vec<(usize, usize, usize)> = Vec::with_capacity(blocks.len());
        for (i, j, k) in blocks {
            if let Some(last) = merged.last_mut()
                && last.0 + last.2 == i
                && last.1 + last.2 == j
            {
                last.2 += k;
                continue;
            }
            merged.push((i, j, k));
        }
        merged
    }

    /// `ratio()` of `SequenceMatcher(None, a, b)`.
    pub fn ratio(&self, a: &[char]) -> f64 {
        calculate_ratio(self.matches(a), a.len() + self.b.len())
    }

    /// `quick_ratio()`: an upper bound on [`Self::ratio`] from character counts.
    pub fn quick_ratio(&self, a: &[char]) -> f64 {
        if let Some(counts) = &self.ascii_counts
            && a.iter().all(char::is_ascii)
        {
            let mut avail = counts.borrow_mut();
            let mut matches = 0;
            for &c in a {
                let slot = &mut avail[c as usize];
                if *slot > 0 {
                    matches += 1;
                }
                *slot -= 1;
            }
            for &c in a {
                avail[c as usize] += 1;
            }
            return calculate_ratio(matches, a.len() + self.b.len());
        }
        let mut avail: HashMap<char, isize> = HashMap::new();
        let mut matches = 0;
        for c in a {
            let n = *avail
                .entry(*c)
                .or_insert_with(|| self.fullbcount.get(c).copied().unwrap_or(0) as isize);
            avail.insert(*c, n - 1);
            if n > 0 {
                matches += 1;
            }
        }
        calculate_ratio(matches, a.len() + self.b.len())
    }

    /// `real_quick_ratio()`: an upper bound on [`Self::ratio`] from the lengths.
    pub fn real_quick_ratio(&self, a: &[char]) -> f64 {
        let (la, lb) = (a.len(), self.b.len());
        calculate_ratio(la.min(lb), la + lb)
    }
}

struct Buffers {
    j2len: Vec<usize>,
    scratch: Vec<usize>,
    touched: Vec<usize>,
    touched_new: Vec<usize>,
    queue: Vec<(usize, usize, usize, usize)>,
}

fn calculate_ratio(matches: usize, length: usize) -> f64 {
    if length == 0 {
        1.0
    } else {
        2.0 * matches as f64 / length as f64
    }
}

/// `difflib.get_close_matches(word, possibilities, n, cutoff)`, returning (score, candidate)
/// best first; ties go to the larger candidate string, as `heapq.nlargest` on tuples does.
pub fn close_matches<'p>(
    word: &str,
    possibilities: impl IntoIterator<Item = &'p str>,
    n: usize,
    cutoff: f64,
) -> Vec<(f64, &'p str)> {
    let prepared: Vec<(Vec<char>, &'p str)> = possibilities
        .into_iter()
        .map(|p| (p.chars().collect(), p))
        .collect();
    close_matches_prepared(word, &prepared, n, cutoff)
}

/// [`close_matches`] over candidates already split into chars (done once per shapefile).
pub(crate) fn close_matches_prepared<'p>(
    word: &str,
    candidates: &[(Vec<char>, &'p str)],
    n: usize,
    cutoff: f64,
) -> Vec<(f64, &'p str)> {
    let b: Vec<char> = word.chars().collect();
    let sm = SequenceMatcher::new(&b);
    let mut result: Vec<(f64, &'p str)> = Vec::new();
    for (a, x) in candidates {
        if sm.real_quick_ratio(a) >= cutoff && sm.quick_ratio(a) >= cutoff {
            let r = sm.ratio(a);
            if r >= cutoff {
                result.push((r, x));
            }
        }
    }
    result.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| y.1.cmp(x.1)));
    result.truncate(n);
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ratios_match_python_difflib() {
        // Values computed with CPython 3 difflib.SequenceMatcher(None, a, b).ratio().
        let cases = [
            ("Fagg c", "Fagge C", 0.7692307692307693),
            ("Bakin Ruwa", "Bakin-Ruwa", 0.9),
            ("Gawuna", "Gawunab", 0.9230769230769231),
            ("Zaitawa", "zaitawai", 0.8),
            ("", "", 1.0),
            ("abc", "", 0.0),
        ];
        for (a, b, want) in cases {
            assert_eq!(sequence_ratio(a, b), want, "{a} / {b}");
        }
    }

    // Generated with CPython's difflib (short and 200+ character strings over a small alphabet,
    // so autojunk and the popular-character extension both occur).
    const DIFFLIB_CASES: [(&str, &str, f64); 24] = [
        (
            "FeeF- bFe-baecbaFa-ee-b-aFaaa  -aede- F ceaaeceFacd Fcaa-aeaceaaa  aeeeea- cdacdaeab aaaeebF eF beeaee ac-ca be--aab eca-dceaaa - a-dd-eb-e-bebbc -  bF ee-aeaaaaFc ece-ecFbab eF--ac  aacee aabcdF-badbedF-b-aaedcaa-aeacdbaaeFdabddaeaeae-a-ee-a-aaaaced",
            "e-eeeFaFFac-aea ae-ecadcb- Fbdee dec e  e -d bbedaacbaeec eeFed-edaac-ac-dc-abee ac baaeaFda  ecbaeFab cdFFF-be aeebee aeF-Fded aa  eacFdcadFaaedFecea aeabFdbebFFee-a eFFcFbFFFcce- cbFFc-e eFaFa-eaFaFeF-aeabaFeeec eebdeeFda e-acbaa b acdd -eae-aF-c FeaeeF-bF F F F--b dbd-d   ab baceaeeFb eaa -ddaFdF",
            0.0,
        ),
        (
            "aeaaaF-",
            "F-eb ba bbca-abeaadeeeFde -daa beedde -baFadae-- F-dccabebdFdebe badceaad-a ccd e-bFaeFe ae-aa-a ceeFa eaacccdFFFeF-aeaF-aebeebeF--aeeecFe-cdFcecFccaa -abeeadea-da eec aFaeb -aa-eea adFbadebee-c-edFbcb eaFcF-dcc--- c   F aaaccea-aa FcaabF deed ddebaae- eecebdb-dcFbed-aedaFae--eecaac -acedcb dddade--",
            0.0,
        ),
        ("Fced eF adda", "de-e -deFb--bba", 0.37037037037037035),
        (
            "ca FaFb-caea-FcFadacadaabae  eFdeedddbeeFa-aedaeaeFaFdaaeeb bebd eeFccaecacbbaea-eada bd - -e-F ebcebcFFeceedFae ea beFFca aede e-bebdbcFb-cFFab-ba bbadc-Faeea-FFca e ae aFeFebcdceaFceadabaeeaeaee c-aea -bceFcdeFac  eadcc-edeeaab-abbb eae-aa abaeeade",
            "Fb beede-ae-d -Facd dceaFe Fdca-bcFcF d-FFb- F -a ab e-eddadceaeb -FFFaFcbd-baacd -dbb-Faeaebbce--ab eeabFea-ebdFbc -daabee-aede--eceeeea-aFdFFeeadac-ee-dc-a ae FeaeaF Fce adFe-b e-aaaFbaF-eac cadbaeeFebd- acaedcdebe  ca ddeabF F  aacdcebdeeab ca cb FccdFa-F cb cbaeaeFaFaa--cFce-abc  bcFabba-e-eaeab",
            0.0,
        ),
        (
            "d",
            "deaFcFFFb-ba-e eFc ceF --eca -a-ebdb-a-e",
            0.04878048780487805,
        ),
        (
            "ecaaab-F- -bacead-Fc-eaFbec be-eadeed abe-bbeFaa eFbaeFceeaa- ccaF eea dcd- abe-ad--bee eea ed bFbe e -eceeebe Feeaacdc-aFbcFe- cadabdb aadeeaedcFace- ea bF-ba ceeeFbFFcdeeb cFeebeFd acdd- baae-aca Fdad caeaeea",
            "eedcec be ebd Fadebe-cFcaeadaecaee-cedca",
            0.184,
        ),
        ("", "d", 0.0),
        (
            "-ccbee-dda- aa-Fe-eacaeeeeabFc",
            "cedeab- ",
            0.3157894736842105,
        ),
        ("c  FaFea FeF", "a-Fd", 0.125),
        ("aad eb bbd-e", "-cdecdFe", 0.4),
        (
            " ddbFba",
            "aacaeFeab-eeadceFeccddbd -b-eb-cbb e-c bae-bcceceebabaa cdFaedaFebdacec e-eb-e FcbebaFceeabdac--bcecd ae dFcFabaacaabdeb eeaedFeFa F--cc c e-ababFaacdaFcaFea adaFc eecFaeeec-aa-b dedFcdedccad-acd b abFc bd",
            0.0,
        ),
        ("b", "ddbe", 0.4),
        ("", "e", 0.0),
        ("", "adF abda-a-dee ", 0.0),
        (
            "bcaedbdFabea --deeF-aaeeeeeF e-F-aFaFeec-a-adbFedc-d eFeabea bbaaFccabadcFde Fae ec aaFee aeaFabdbadad caeb-ea-eeaa Fd Feeaddc-  bbb-eabcacd--dc aa dce baced-ecebFaadFe e-acacae ee e- eadedc-ecca- aedb-ceecda-aFae adada-dabeadbeFde-a aee Faaaee F- ed",
            "bFeaaab-ceaeeba",
            0.10566037735849057,
        ),
        (
            "daadeFFFaacF-aa- baFFccd  -eea",
            " -ebFaebaFbb-Fbe--aea baebcF-aeaecFaeeca cFaede Fb-Faecc-c daeeededeaacFabFeFde adadde FFeade-aa-d d-dc --adbeaFdaa c-cedeac-aae cdadbbccaeae-aFbda- -FaeedabaebeeeaedaadFaaecFa aedFbabceeaee eeeeFeaFb-d adbde-Fee--ed-beedae cde-acace  e-aFbeFeeea b-acFbad-bFedebedca b  F-dab -bdddac-ca dabFccccFbcea",
            0.0,
        ),
        ("ccFbebFb-aFb", "F", 0.15384615384615385),
        ("aedF eedd Fc", "-d aFa-a", 0.3),
        ("a-a dcdbaaba", "e", 0.0),
        (
            "FFa",
            "eFbaFd-e aebe aeaFFabccd cbFbea-e----dbaFbaaaccaeabb-F-aada e edd dea ca-dFdFde eb b cee db -c-F-c-abc acFd a FaaF e aeFbddaaebe d ecF-aeaaeaeaebba be ddbbbda  b eddacbabdaacdb-acFFF-eFcaa aacFbbd-ace-ed-e",
            0.0,
        ),
        (
            " beae-eFacbabe aa ee-aeabdabcadc-Fdec-dbdb---eeF-ecde -beFFcbd F-ebdcaadeFaeFeaeece--eaadeeabacFeaaca -eac FaedFaaeebcdFFd  ecb ccbaec aaFde-eabacceccb-c-baeeea-cee edaabe  -abFedecbacaddaacF--ceadac FeaaaFaeF c -d edeadadcFFe e eaaeeeeFFc-FeaFa ba-b",
            "b",
            0.00796812749003984,
        ),
        (
            "-dcaaeaeae c",
            "aFaace-ebee- e -eaa-b a-eeaeaee-a  e-dadca F-ee caace de eed -aec-aeeFeeFea c --ee c -aF-d-eaedeca-e ec eae-a ea-dd-eccFeFbab-dFac-dFedbeeceba-aeeFFe-acdeaaacFbd ecbd-FFaFdeebc-  baaaa caea-acd -ddd edae-c-Fd F --dbdeebb-bed-d d eda eaaF-aada-de-Feaaea-bFcabdaec Fad da cccaadce-bcbabaeF cF-eF eedFce",
            0.0,
        ),
        (
            "-F cacceaa-ecF dFedeaeFF - aa FdFeFFcacFdaFaabeaeFe-F-a-bae e eFd--aa  -a cdbFFabc  badab abedcbda-aa-cecebeea -cc aacb ecaedeaaee-eaFcaaad-dFdeb--b Fae- e eaaFab ee e-ebdadabcb-aa ebaabd-a-a cb eae aFbabFeebe-Faeaeca-a dae-ecFcbbedaacccc abedcaFaed-",
            "---c ec-bcee-abae-c d-e ceacbdF- Fc eF-d",
            0.13793103448275862,
        ),
        ("", "a", 0.0),
    ];

    #[test]
    fn random_strings_match_python_difflib() {
        for (a, b, want) in DIFFLIB_CASES {
            assert_eq!(sequence_ratio(a, b), want, "{a} / {b}");
        }
    }

    #[test]
    fn autojunk_applies_to_long_sequences() {
        // b has 200+ chars, 'a' is popular (more than 1%) and drops out of b2j.
        let b = format!("{}{}", "a".repeat(150), "bcdefghij".repeat(10));
        let a = format!("x{}", "a".repeat(10));
        // CPython: SequenceMatcher(None, a, b).ratio() == 0.0 because every 'a' in b is popular.
        assert_eq!(
            SequenceMatcher::new(&b.chars().collect::<Vec<_>>())
                .ratio(&a.chars().collect::<Vec<_>>()),
            0.0
        );
    }

    #[test]
    fn close_match_ties_prefer_larger_string() {
        let hits = close_matches("Fagge", ["Fagge A", "Fagge B"], 1, 0.5);
        assert_eq!(hits[0].1, "Fagge B");
    }
}
