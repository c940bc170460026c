use std::fmt;

use crate::error::{Error, Result};

/// Every file the service keeps for a session. File names are those of `api.md` and
/// `analysis.md` §1.5, which older tools and deployments rely on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Artifact {
    /// The uploaded ward table as CSV, `raw_data.csv`.
    RawCsv,
    /// The uploaded ward table as Excel, `raw_data.xlsx`.
    RawXlsx,
    /// The uploaded shapefile zip, `raw_shapefile.zip`.
    RawShapefile,
    /// The population table for ITN planning, `population.csv`.
    Population,
    /// Ward table, scores and boundaries together, `unified_dataset.geoparquet`.
    UnifiedGeoparquet,
    /// The same without geometry, `unified_dataset.csv`.
    UnifiedCsv,
    /// Composite rankings, `analysis_vulnerability_rankings.csv`.
    Rankings,
    /// PCA rankings, `analysis_vulnerability_rankings_pca.csv`.
    RankingsPca,
    /// The table after cleaning and imputation, `analysis_cleaned_data.csv`.
    CleanedData,
    /// The normalised variables, `analysis_normalized_data.csv`.
    NormalizedData,
    /// Every model's score per ward, `analysis_composite_scores.csv`.
    CompositeScores,
    /// The second copy of the composite scores the Python system wrote, `composite_scores.csv`.
    CompositeScoresCopy,
    /// The variables of each model, `model_formulas.csv`.
    ModelFormulas,
    /// Component scores per ward, `analysis_pca_scores.csv`.
    PcaScores,
    /// Variable importance of the PCA, `pca_variable_importance.json`.
    PcaVariableImportance,
    /// Explained variance of the PCA, `pca_explained_variance.json`.
    PcaExplainedVariance,
    /// Per-variable metadata of the unified dataset, `unified_variable_metadata.json`.
    VariableMetadata,
    /// The ITN plan's figures, `itn_distribution_results.json`.
    ItnResults,
    /// A map or chart under `visualizations/`.
    Visualization(RelPath),
    /// A download package under `exports/`.
    Export(RelPath),
    /// Chat history and pending UI state (`conversation.json`).
    Conversation,
    /// The uploaded health-facility export, unchanged (tpr.md §8.1 `tpr_upload.<ext>`).
    TprUploadCsv,
    /// The facility export as uploaded, `tpr_upload.xlsx`.
    TprUploadXlsx,
    /// The facility export as uploaded, `tpr_upload.xls`.
    TprUploadXls,
    /// A ward shapefile uploaded with the facility export (`tpr_shapefile.zip`), for a session
    /// without a ward table of its own: the ward TPR is matched to its wards and becomes the
    /// session's ward table.
    TprShapefile,
    /// The outputs of one TPR computation (tpr.md §8.1), replaced together by the next.
    TprSelection,
    /// Ward TPR, `tpr_results.csv` (tpr.md §4).
    TprResults,
    /// Ward x year series, `tpr_time_series.csv` (§6.1).
    TprTimeSeries,
    /// Ward trends, `trend_summary.csv` (§6.2-6.3).
    TprTrendSummary,
    /// Emerging and resolving hotspots, `tpr_hotspots.csv` (§6.4).
    TprHotspots,
    /// LGA rates, `tpr_lga_summary.csv` (§6.5).
    TprLgaSummary,
    /// LGA trends, `tpr_lga_trend.csv` (§6.5).
    TprLgaTrend,
    /// Wards to reprioritise, `tpr_reprioritise.csv` (§6.6).
    TprReprioritise,
    /// Missing cells by scope, `tpr_missingness.csv` (§7).
    TprMissingness,
    /// Data ward to shapefile ward matches, `ward_matching.csv` (§4.4).
    TprWardMatching,
}

/// What part of the protocol writes an artifact; decides where it is stored and what commit
/// makes it current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// Written by an upload, current once the upload commits (a new generation).
    Input,
    /// `population.csv`, committed on its own into the current generation.
    Population,
    /// Written by an analysis, current once the analysis commits.
    AnalysisOutput,
    /// Written by ITN planning, current while its analysis is.
    Itn,
    /// Plain files under `visualizations/` or `exports/`, written atomically one by one.
    Loose,
    /// Session-lifetime document updated under the session lock.
    Document,
    /// The facility export of the TPR workflow: independent of the ward-table generations,
    /// replaced by the next TPR upload, removed by a clear.
    TprInput,
    /// Written by a TPR computation, current while its TPR upload is.
    TprOutput,
}

/// The analysis outputs whose presence marks a folder as analysed (api.md).
pub const ANALYSIS_EVIDENCE: [Artifact; 4] = [
    Artifact::UnifiedGeoparquet,
    Artifact::UnifiedCsv,
    Artifact::Rankings,
    Artifact::RankingsPca,
];

/// The artifacts an upload's ward table may be stored as (CSV text or an Excel workbook), in
/// the order they are looked for.
pub const UPLOADED_TABLE: [Artifact; 2] = [Artifact::RawCsv, Artifact::RawXlsx];

/// The uploaded ward table as stored: which artifact it is and its bytes. Parsing it is
/// mrpt-formats' job; this crate only says what is on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedTable {
    /// `RawCsv` or `RawXlsx`.
    pub artifact: Artifact,
    /// The file as uploaded.
    pub bytes: Vec<u8>,
}

/// Every artifact with a fixed name in the folder root, in a stable order.
pub const FIXED: [Artifact; 33] = [
    Artifact::RawCsv,
    Artifact::RawXlsx,
    Artifact::RawShapefile,
    Artifact::Population,
    Artifact::UnifiedGeoparquet,
    Artifact::UnifiedCsv,
    Artifact::Rankings,
    Artifact::RankingsPca,
    Artifact::CleanedData,
    Artifact::NormalizedData,
    Artifact::CompositeScores,
    Artifact::CompositeScoresCopy,
    Artifact::ModelFormulas,
    Artifact::PcaScores,
    Artifact::PcaVariableImportance,
    Artifact::PcaExplainedVariance,
    Artifact::VariableMetadata,
    Artifact::ItnResults,
    Artifact::Conversation,
    Artifact::TprUploadCsv,
    Artifact::TprUploadXlsx,
    Artifact::TprUploadXls,
    Artifact::TprShapefile,
    Artifact::TprSelection,
    Artifact::TprResults,
    Artifact::TprTimeSeries,
    Artifact::TprTrendSummary,
    Artifact::TprHotspots,
    Artifact::TprLgaSummary,
    Artifact::TprLgaTrend,
    Artifact::TprReprioritise,
    Artifact::TprMissingness,
    Artifact::TprWardMatching,
];

/// The TPR outputs, in the order of tpr.md §8.1.
pub const TPR_OUTPUTS: [Artifact; 10] = [
    Artifact::TprSelection,
    Artifact::TprResults,
    Artifact::TprTimeSeries,
    Artifact::TprTrendSummary,
    Artifact::TprHotspots,
    Artifact::TprLgaSummary,
    Artifact::TprLgaTrend,
    Artifact::TprReprioritise,
    Artifact::TprMissingness,
    Artifact::TprWardMatching,
];

impl Artifact {
    /// The file name (for fixed artifacts) or the path relative to the session folder.
    pub fn file_name(&self) -> String {
        match self {
            Artifact::Visualization(rel) => format!("visualizations/{rel}"),
            Artifact::Export(rel) => format!("exports/{rel}"),
            fixed => fixed.fixed_name().unwrap_or_default().to_owned(),
        }
    }

    pub(crate) fn fixed_name(&self) -> Option<&'static str> {
        Some(match self {
            Artifact::RawCsv => "raw_data.csv",
            Artifact::RawXlsx => "raw_data.xlsx",
            Artifact::RawShapefile => "raw_shapefile.zip",
            Artifact::Population => "population.csv",
            Artifact::UnifiedGeoparquet => "unified_dataset.geoparquet",
            Artifact::UnifiedCsv => "unified_dataset.csv",
            Artifact::Rankings => "analysis_vulnerability_rankings.csv",
            Artifact::RankingsPca => "analysis_vulnerability_rankings_pca.csv",
            Artifact::CleanedData => "analysis_cleaned_data.csv",
            Artifact::NormalizedData => "analysis_normalized_data.csv",
            Artifact::CompositeScores => "analysis_composite_scores.csv",
            Artifact::CompositeScoresCopy => "composite_scores.csv",
            Artifact::ModelFormulas => "model_formulas.csv",
            Artifact::PcaScores => "analysis_pca_scores.csv",
            Artifact::PcaVariableImportance => "pca_variable_importance.json",
            Artifact::PcaExplainedVariance => "pca_explained_variance.json",
            Artifact::VariableMetadata => "unified_variable_metadata.json",
            Artifact::ItnResults => "itn_distribution_results.json",
            Artifact::Conversation => "conversation.json",
            Artifact::TprUploadCsv => "tpr_upload.csv",
            Artifact::TprUploadXlsx => "tpr_upload.xlsx",
            Artifact::TprUploadXls => "tpr_upload.xls",
            Artifact::TprShapefile => "tpr_shapefile.zip",
            Artifact::TprSelection => "tpr_selection.json",
            Artifact::TprResults => "tpr_results.csv",
            Artifact::TprTimeSeries => "tpr_time_series.csv",
            Artifact::TprTrendSummary => "trend_summary.csv",
            Artifact::TprHotspots => "tpr_hotspots.csv",
            Artifact::TprLgaSummary => "tpr_lga_summary.csv",
            Artifact::TprLgaTrend => "tpr_lga_trend.csv",
            Artifact::TprReprioritise => "tpr_reprioritise.csv",
            Artifact::TprMissingness => "tpr_missingness.csv",
            Artifact::TprWardMatching => "ward_matching.csv",
            Artifact::Visualization(_) | Artifact::Export(_) => return None,
        })
    }

    /// The fixed artifact with this file name, if any (for download routes that name a file).
    pub fn from_file_name(name: &str) -> Option<Artifact> {
        FIXED.iter().find(|a| a.fixed_name() == Some(name)).cloned()
    }

    /// A visualization named by a URL path (`/serve_viz_file/<sid>/<path>`); a leading
    /// `visualizations/` is accepted and stripped.
    pub fn visualization(path: &str) -> Result<Artifact> {
        let rel = path.strip_prefix("visualizations/").unwrap_or(path);
        RelPath::parse(rel).map(Artifact::Visualization)
    }

    /// An export named by a URL path; a leading `exports/` is accepted and stripped.
    pub fn export(path: &str) -> Result<Artifact> {
        let rel = path.strip_prefix("exports/").unwrap_or(path);
        RelPath::parse(rel).map(Artifact::Export)
    }

    /// Which protocol writes it, hence where it is stored and which commit makes it current.
    pub fn kind(&self) -> ArtifactKind {
        match self {
            Artifact::RawCsv | Artifact::RawXlsx | Artifact::RawShapefile => ArtifactKind::Input,
            Artifact::Population => ArtifactKind::Population,
            Artifact::ItnResults => ArtifactKind::Itn,
            Artifact::Visualization(_) | Artifact::Export(_) => ArtifactKind::Loose,
            Artifact::Conversation => ArtifactKind::Document,
            Artifact::TprUploadCsv
            | Artifact::TprUploadXlsx
            | Artifact::TprUploadXls
            | Artifact::TprShapefile => ArtifactKind::TprInput,
            Artifact::TprSelection
            | Artifact::TprResults
            | Artifact::TprTimeSeries
            | Artifact::TprTrendSummary
            | Artifact::TprHotspots
            | Artifact::TprLgaSummary
            | Artifact::TprLgaTrend
            | Artifact::TprReprioritise
            | Artifact::TprMissingness
            | Artifact::TprWardMatching => ArtifactKind::TprOutput,
            _ => ArtifactKind::AnalysisOutput,
        }
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// Longest uploaded file name, in characters, that is stored (in the manifest), shown and logged.
pub const MAX_STORED_FILE_NAME: usize = 128;
/// Longest extension kept when a name is shortened.
const MAX_KEPT_EXTENSION: usize = 16;

/// An uploaded file's name as it may be stored, echoed and logged: the last path component
/// (old browsers sent whole Windows paths), control characters replaced by `_`, and at most
/// [`MAX_STORED_FILE_NAME`] characters. A longer name keeps its beginning and its extension (up
/// to 16 characters after the last dot), joined by `…`, so `.csv`/`.xlsx`/`.zip` survive. An
/// empty name becomes `upload`. Linear in the input, however long.
pub fn stored_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean = |c: char| if c.is_control() { '_' } else { c };
    if base.chars().nth(MAX_STORED_FILE_NAME).is_none() {
        let out: String = base.chars().map(clean).collect();
        return if out.trim().is_empty() {
            "upload".to_owned()
        } else {
            out
        };
    }
    let extension = base
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.chars().nth(MAX_KEPT_EXTENSION).is_none())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    let keep = MAX_STORED_FILE_NAME - 1 - extension.chars().count();
    let mut out: String = base.chars().take(keep).map(clean).collect();
    out.push('…');
    out.extend(extension.chars().map(clean));
    out
}

/// A user-supplied relative path that is safe to join under `visualizations/` or `exports/`:
/// 1 to 4 components of `[A-Za-z0-9._-]` (at most 128 bytes each), none starting with `.`, no
/// separators other than `/`. So no `..`, no absolute paths, no NUL, no hidden files, no
/// backslashes. Symlinks are refused again when the file is opened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelPath(String);

impl RelPath {
    const MAX_DEPTH: usize = 4;
    const MAX_COMPONENT: usize = 128;

    /// Checks a client-supplied path: at most 4 components of `[A-Za-z0-9._-]`, none empty,
    /// hidden, `.`/`..` or over 128 bytes, not absolute; else [`Error::UnsafePath`].
    pub fn parse(text: &str) -> Result<RelPath> {
        let refuse = |reason| Error::UnsafePath {
            path: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(refuse("empty path"));
        }
        if text.starts_with('/') {
            return Err(refuse("absolute path"));
        }
        let components: Vec<&str> = text.split('/').collect();
        if components.len() > Self::MAX_DEPTH {
            return Err(refuse("too many path components"));
        }
        for component in components {
            if component.is_empty() {
                return Err(refuse("empty path component"));
            }
            if component == "." || component == ".." {
                return Err(refuse("relative path component"));
            }
            if component.starts_with('.') {
                return Err(refuse("hidden file"));
            }
            if component.len() > Self::MAX_COMPONENT {
                return Err(refuse("path component too long"));
            }
            let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-';
            if !component.bytes().all(allowed) {
                return Err(refuse("characters outside [A-Za-z0-9._-]"));
            }
        }
        Ok(RelPath(text.to_owned()))
    }

    /// The path as given (`/`-separated, relative).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_names_round_trip() {
        for artifact in FIXED {
            let name = artifact.file_name();
            assert_eq!(Artifact::from_file_name(&name), Some(artifact));
        }
        assert_eq!(
            Artifact::Rankings.file_name(),
            "analysis_vulnerability_rankings.csv"
        );
        assert_eq!(Artifact::from_file_name("manifest.json"), None);
    }

    #[test]
    fn url_paths_become_loose_artifacts() {
        assert_eq!(
            Artifact::visualization("visualizations/itn.html")
                .unwrap()
                .file_name(),
            "visualizations/itn.html"
        );
        assert_eq!(
            Artifact::export("report.zip").unwrap().file_name(),
            "exports/report.zip"
        );
        assert!(Artifact::visualization("visualizations/../manifest.json").is_err());
        assert!(Artifact::export("../raw_data.csv").is_err());
    }

    #[test]
    fn stored_file_names_are_bounded_and_keep_their_extension() {
        assert_eq!(stored_file_name("kano.csv"), "kano.csv");
        assert_eq!(
            stored_file_name("C:\\fakepath\\kano wards.xlsx"),
            "kano wards.xlsx"
        );
        assert_eq!(stored_file_name("../../etc/x.zip"), "x.zip");
        assert_eq!(stored_file_name("a\r\nb.csv"), "a__b.csv");
        assert_eq!(stored_file_name(""), "upload");
        let huge = format!("{}.csv", "n".repeat(25 * 1024 * 1024));
        let short = stored_file_name(&huge);
        assert_eq!(short.chars().count(), MAX_STORED_FILE_NAME);
        assert!(
            short.ends_with("….csv") && short.starts_with("nnnn"),
            "{short}"
        );
        let exact = "é".repeat(MAX_STORED_FILE_NAME);
        assert_eq!(stored_file_name(&exact), exact);
        let no_ext = "x".repeat(1000);
        assert_eq!(
            stored_file_name(&no_ext).chars().count(),
            MAX_STORED_FILE_NAME
        );
        let long_ext = format!("a.{}", "e".repeat(500));
        assert!(stored_file_name(&long_ext).ends_with('…'));
    }

    #[test]
    fn rel_path_refuses_escapes() {
        let bad = [
            "",
            "/etc/passwd",
            "../x.html",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".hidden",
            "a\\..\\b",
            "a\0b",
            "C:x",
            "a b.html",
            "a/b/c/d/e",
            "%2e%2e/x",
            "caf\u{e9}.html",
        ];
        for text in bad {
            assert!(RelPath::parse(text).is_err(), "{text:?}");
        }
        for good in [
            "itn_map_20250101_120000.html",
            "charts/box-plot.v2.html",
            "a/b/c/d",
        ] {
            assert!(RelPath::parse(good).is_ok(), "{good:?}");
        }
    }
}
