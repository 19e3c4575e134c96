/* ftpaddr.h - the four FTP data-address encodings, parsed and formatted.
 *
 *   PORT h1,h2,h3,h4,p1,p2          (RFC 959)    and the 227 PASV reply
 *   EPRT |proto|addr|port|          (RFC 2428)   and the 229 EPSV reply
 *
 * Parsers are strict (range-checked decimal numbers, exact field counts)
 * and return 0 or -EINVAL. They do no policy: whether an address is allowed
 * (same host as the control peer, port >= 1024) is the caller's check. */
#ifndef FERRY_FTPADDR_H
#define FERRY_FTPADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* "h1,h2,h3,h4,p1,p2" -> IPv4 address and port. */
int ftp_port_parse(const char *arg, struct sockaddr_storage *out);
/* IPv4 address -> "h1,h2,h3,h4,p1,p2". -EAFNOSUPPORT for IPv6. */
int ftp_port_format(const struct sockaddr_storage *sa, char *out, size_t outlen);
/* "|1|132.235.1.2|6275|" -> address. -EAFNOSUPPORT for a protocol other
 * than 1 (IPv4) or 2 (IPv6), -EINVAL for anything malformed. */
int ftp_eprt_parse(const char *arg, struct sockaddr_storage *out);
int ftp_eprt_format(const struct sockaddr_storage *sa, char *out, size_t outlen);
/* Text of a 227 reply -> address: the first run of six comma-separated numbers. */
int ftp_pasv_reply_parse(const char *text, struct sockaddr_storage *out);
/* Text of a 229 reply -> port, from "(|||port|)" with any delimiter. */
int ftp_epsv_reply_parse(const char *text, int *port);

#endif
