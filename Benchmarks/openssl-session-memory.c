// How much an idle server-side OpenSSL session holds, by allocation site: N server SSLs finish a
// TLS 1.3 handshake and echo one record over memory BIOs, in process; live bytes are counted
// through CRYPTO_set_mem_functions. Explains the idle-mem-tls figure (docs/performance.md).
//   cc -O1 -o /tmp/sslmem Benchmarks/openssl-session-memory.c -lssl -lcrypto && /tmp/sslmem 1   (needs /tmp/pki from make-certs.sh)
// Argument: bit 1 SSL_MODE_RELEASE_BUFFERS, bit 2 no session tickets, bit 4 SSL_free_buffers after the echo.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
static long live = 0; static int counting = 0;
#define MAXS 4096
static struct { const char *f; int l; long bytes; } sites[MAXS]; static int nsites = 0;
static int site(const char *f, int l) { for (int i = 0; i < nsites; i++) if (sites[i].l == l && strcmp(sites[i].f, f) == 0) return i; if (nsites < MAXS) { sites[nsites].f = f; sites[nsites].l = l; return nsites++; } return 0; }
static void *m(size_t n, const char *f, int l) { size_t *p = malloc(n + 32); if (!p) return 0; p[0] = n; p[1] = counting ? site(f ? f : "?", l) + 1 : 0; if (counting) { live += n; if (p[1]) sites[p[1]-1].bytes += n; } return (char *)p + 32; }
static void *r(void *q, size_t n, const char *f, int l) { if (!q) return m(n, f, l); size_t *p = (size_t *)((char *)q - 32); if (p[1]) { live -= p[0]; sites[p[1]-1].bytes -= p[0]; } p = realloc(p, n + 32); p[0] = n; if (p[1]) { live += n; sites[p[1]-1].bytes += n; } return (char *)p + 32; }
static void fr(void *q, const char *f, int l) { if (!q) return; size_t *p = (size_t *)((char *)q - 32); if (p[1]) { live -= p[0]; sites[p[1]-1].bytes -= p[0]; } free(p); }
static void pump(BIO *from, BIO *to) { char buf[65536]; int n; while ((n = BIO_read(from, buf, sizeof buf)) > 0) BIO_write(to, buf, n); }
int main(int argc, char **argv) {
    CRYPTO_set_mem_functions(m, r, fr);
    int mode = atoi(argv[1]); int N = 200;
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate_chain_file(sctx, "/tmp/pki/server.pem"); SSL_CTX_use_PrivateKey_file(sctx, "/tmp/pki/server.key", SSL_FILETYPE_PEM);
    SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
    if (mode & 1) SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(sctx, (mode & 2) ? 0 : 1);
    SSL *servers[200], *clients[200]; BIO *sin[200], *sout[200], *cin[200], *cout[200];
    counting = 1; long before = live;
    for (int i = 0; i < N; i++) {
        servers[i] = SSL_new(sctx); clients[i] = SSL_new(cctx);
        sin[i] = BIO_new(BIO_s_mem()); sout[i] = BIO_new(BIO_s_mem()); cin[i] = BIO_new(BIO_s_mem()); cout[i] = BIO_new(BIO_s_mem());
        SSL_set_bio(servers[i], sin[i], sout[i]); SSL_set_bio(clients[i], cin[i], cout[i]);
        SSL_set_accept_state(servers[i]); SSL_set_connect_state(clients[i]);
        for (int k = 0; k < 10; k++) { SSL_do_handshake(clients[i]); pump(cout[i], sin[i]); SSL_do_handshake(servers[i]); pump(sout[i], cin[i]); }
        char msg[32] = "hello"; size_t w; SSL_write_ex(clients[i], msg, 32, &w); pump(cout[i], sin[i]);
        char buf[100]; size_t got; SSL_read_ex(servers[i], buf, sizeof buf, &got); SSL_write_ex(servers[i], buf, got, &w);
        if (mode & 4) SSL_free_buffers(servers[i]);
        pump(sout[i], cin[i]); SSL_read_ex(clients[i], buf, sizeof buf, &got);
    }
    long with_clients = live - before;
    for (int i = 0; i < N; i++) SSL_free(clients[i]);
    long servers_only = live - before;
    // the mem BIOs of the server still hold buffers: measure them
    long bios = 0; for (int i = 0; i < N; i++) { BUF_MEM *b; BIO_get_mem_ptr(sin[i], &b); bios += b->max; BIO_get_mem_ptr(sout[i], &b); bios += b->max; }
    printf("mode %d: server side %.2f KiB per connection (mem BIO storage %.2f KiB of it)\n", mode, servers_only / 1024.0 / N, bios / 1024.0 / N);
    for (int i = 0; i < nsites; i++) if (sites[i].bytes / N >= 128) printf("  %6ld B  %s:%d\n", sites[i].bytes / N, sites[i].f, sites[i].l);
    return 0;
}
