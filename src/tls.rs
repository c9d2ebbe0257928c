//! The TLS crypto provider, chosen once for the whole process.

/// Installs ring as rustls' process-wide provider, which the partner client
/// needs; calling it again does nothing.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
