/* The console's page, script and style sheet (broker/net/console/), compiled into synclogd with the assembler's
 * .incbin so that the broker serves them with nothing installed beside it and no build step but the compiler's
 * (the Makefile rebuilds this file when one of them changes). Each file is followed by a NUL that is not counted
 * in its length. */
#include <string.h>

#include "broker/net/console.h"

#define SL_CONSOLE_EMBED(sym, file)                     \
	__asm__(".section .rodata\n"                    \
	        ".balign 16\n"                          \
	        ".global " #sym "\n" #sym ":\n"         \
	        ".incbin \"" file "\"\n"                \
	        ".global " #sym "_end\n" #sym "_end:\n" \
	        ".byte 0\n"                             \
	        ".previous\n");                         \
	extern const unsigned char sym[], sym##_end[]

SL_CONSOLE_EMBED(sl_console_index_html, "broker/net/console/index.html");
SL_CONSOLE_EMBED(sl_console_js, "broker/net/console/console.js");
SL_CONSOLE_EMBED(sl_console_css, "broker/net/console/console.css");

const struct sl_console_asset *sl_console_asset_find(const char *path, size_t path_len)
{
	static struct sl_console_asset assets[4];
	static int filled;
	if (!filled) {
		/* /ui and /ui/ are the page; the rest by file name. */
		assets[0] = (struct sl_console_asset){"/ui/", "text/html; charset=utf-8", sl_console_index_html,
		                                      (size_t)(sl_console_index_html_end - sl_console_index_html)};
		assets[1] = (struct sl_console_asset){"/ui", assets[0].content_type, assets[0].data, assets[0].len};
		assets[2] = (struct sl_console_asset){"/ui/console.js", "text/javascript; charset=utf-8", sl_console_js,
		                                      (size_t)(sl_console_js_end - sl_console_js)};
		assets[3] = (struct sl_console_asset){"/ui/console.css", "text/css; charset=utf-8", sl_console_css,
		                                      (size_t)(sl_console_css_end - sl_console_css)};
		filled = 1;
	}
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
		if (strlen(assets[i].path) == path_len && memcmp(assets[i].path, path, path_len) == 0)
			return &assets[i];
	return NULL;
}
