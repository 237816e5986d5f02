/*
 * error.c - names and texts of the error codes, generated from the one
 * list in net/error.h; a negated errno gets the C library's text. No
 * state.
 */
#include "net/error.h"

#include <string.h>

/* The text for code, from WS_ERRNO_MAP, or strerror() for an errno. */
const char *ws_strerror(int code)
{
    switch (code) {
#define WS_ERROR_TEXT_(name, value, text)                                      \
    case value:                                                                \
        return text;
        WS_ERRNO_MAP(WS_ERROR_TEXT_)
#undef WS_ERROR_TEXT_
    }
    if (code < 0 && code > -4000)
        return strerror(-code);
    return "unknown error";
}

/* The symbolic name for code, from WS_ERRNO_MAP. */
const char *ws_errname(int code)
{
    switch (code) {
#define WS_ERROR_NAME_(name, value, text)                                      \
    case value:                                                                \
        return "WS_" #name;
        WS_ERRNO_MAP(WS_ERROR_NAME_)
#undef WS_ERROR_NAME_
    }
    if (code < 0 && code > -4000)
        return "WS_ESYS";
    return "WS_EUNKNOWN";
}
