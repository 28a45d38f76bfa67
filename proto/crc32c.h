/* CRC32C (Castagnoli), the checksum of Kafka's record batch v2. Uses the CPU's crc32 instruction where the CPU
 * has it (SSE4.2), a slicing-by-8 table otherwise; the choice is made once, on first use. */
#ifndef SL_PROTO_CRC32C_H
#define SL_PROTO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over data[0..len). The standard check value holds:
 * sl_crc32c(0, "123456789", 9) == 0xE3069283. Thread-safe. */
uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len);

/* The table implementation alone, so tests can compare both paths on the same input. */
uint32_t sl_crc32c_table(uint32_t crc, const void *data, size_t len);

#endif
