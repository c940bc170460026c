//! mrpt-app: the HTTP routes, the workflows that join the crates, the web UI assets, and the one
//! ApiError -> response mapping.
