//! mrpt-interpreter: session context -> tool choice (rule-based, or an OpenAI-compatible model).
