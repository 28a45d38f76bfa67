/* The cipher suites both ends of a synclog TLS connection offer, in the order they prefer them: one definition, so
 * the broker (broker/tls.c) and the client library (consumer/client/tls.c) agree on what is fast and what is safe.
 *
 * Rules:
 *   1. Only AEAD suites with forward secrecy: TLS 1.3's three, and for TLS 1.2 (the minimum) ECDHE with AES-GCM or
 *      ChaCha20-Poly1305. No CBC, no RSA key exchange, no DHE.
 *   2. AES-128-GCM first. On a CPU with AES-NI and carry-less multiply it is the fastest of them (OpenSSL 3.0's
 *      `openssl speed -evp` on the benchmark machine: AES-128-GCM 3.8 GB/s, AES-256-GCM 3.4 GB/s,
 *      ChaCha20-Poly1305 3.7 GB/s on 16 KiB records), and every byte of a TLS connection is encrypted on one side
 *      and decrypted on the other. OpenSSL's own default puts AES-256-GCM first.
 *   3. The broker chooses by its own order (SSL_OP_CIPHER_SERVER_PREFERENCE), so clients that list AES-256 first
 *      (kcat, librdkafka) get AES-128 too, except that a client listing ChaCha20 first (one without AES
 *      instructions, where ChaCha20 is faster) gets ChaCha20 (SSL_OP_PRIORITIZE_CHACHA). */
#ifndef SL_PROTO_TLS_SUITES_H
#define SL_PROTO_TLS_SUITES_H

/* SSL_CTX_set_ciphersuites: TLS 1.3. */
#define SL_TLS13_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* SSL_CTX_set_cipher_list: TLS 1.2, ECDSA and RSA certificates alike. */
#define SL_TLS12_CIPHERS                                                                           \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#endif
