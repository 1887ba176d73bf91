/* Compile-only stand-in for the SDK's assert.h (see TargetConditionals.h). */
#pragma once
#define assert(x) ((void)0)
