//! mrpt-maps: choropleth maps and charts as SVG inside self-contained HTML. Pure; no I/O.
