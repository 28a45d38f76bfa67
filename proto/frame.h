/* Framing of the wire protocol (proto/synclog.proto): a 4-byte big-endian length, then one protobuf message;
 * and the one table of error codes with their names and default messages. Used by the broker and every
 * client; it knows nothing of sockets or storage. */
#ifndef SL_PROTO_FRAME_H
#define SL_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SL_PROTOCOL_VERSION        1
#define SL_FRAME_HEADER_BYTES      4
/* 16 MiB: room for a produce request of several 1 MiB batches, small enough that one hostile length prefix
 * cannot make the broker reserve more than that per connection. */
#define SL_FRAME_BYTES_MAX_DEFAULT (16u << 20)

/* Read the length prefix at p. Returns 0 with *len_out set, -EAGAIN when fewer than 4 bytes are available,
 * -EMSGSIZE when the length is 0 or larger than frame_bytes_max. */
int sl_frame_length(const uint8_t *p, size_t avail, uint32_t frame_bytes_max, uint32_t *len_out);
void sl_frame_put_length(uint8_t *p, uint32_t len);

/* protobuf-c hands string fields over as C strings, so a string holding a NUL byte would silently lose its
 * tail ("a\0b" would name topic "a"). This walks an encoded message by its descriptor and returns -EBADMSG
 * when any string field, at any depth, holds a NUL, or when the encoding is malformed; 0 otherwise.
 * descriptor is a const ProtobufCMessageDescriptor *. */
int sl_frame_check_strings(const void *descriptor, const uint8_t *p, size_t len);
/* The same walk with the bounds of proto/limits.h on what decoding may allocate: at most SL_REQUEST_ENTRIES_MAX
 * entries in one repeated field of one message, and SL_FRAME_ELEMENTS_MAX messages, repeated entries and unknown
 * fields in the whole frame. Without them a 16 MiB frame of two-byte empty entries decodes into millions of
 * allocations (a 4 MB Fetch took 326 MB). Returns 0, -EBADMSG (malformed, or a NUL in a string) or -E2BIG (over a
 * bound), with *why (if why is not NULL) saying which. */
int sl_frame_check(const void *descriptor, const uint8_t *p, size_t len, const char **why);

/* Name ("UNKNOWN_TOPIC") and default human message of a Synclog__ErrorCode value; "UNKNOWN_ERROR" and a
 * generic message for values not in the table. */
const char *sl_error_name(int code);
const char *sl_error_message(int code);

#endif
