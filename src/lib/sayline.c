#include "sayline.h"

#include <stdio.h>

void say_line(const char *fmt, va_list ap)
{
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}
