//! `pamphlet keygen`: a new SSK subspace from the operating system's RNG.

use anyhow::{Context, Result};
use pamphlet_crypto::{generate_ssk, uri::validate_doc_name};

/// Arguments of `pamphlet keygen`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The document name the URIs point at (one path segment, no '/').
    #[arg(long, default_value = "index")]
    name: String,
    /// Print the URIs as a JSON object instead of labelled lines.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run(args: &Args) -> Result<()> {
    validate_doc_name(&args.name).context("bad --name")?;
    let insert = generate_ssk(&mut rand::rngs::OsRng, &args.name);
    let request = insert.request_uri();
    if args.json {
        let out = serde_json::json!({ "insert_uri": insert.to_string(), "request_uri": request.to_string() });
        println!("{out}");
    } else {
        println!("# Keep the insert URI secret: whoever holds it can publish as you.");
        println!("insert URI:  {insert}");
        println!("request URI: {request}");
    }
    Ok(())
}
