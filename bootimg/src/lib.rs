//! Android boot images (abootimg-compatible): parser, writer and the bootimg CLI.
