/* config.json and generation_config.json parsing. */
#ifndef SLUA_CORE_CONFIG_H
#define SLUA_CORE_CONFIG_H

#include <json-c/json.h>

#include "arch/arch.h"
#include "slua/sl_model.h"

/* Fill c and the architecture's steps a from a parsed config.json (path is only used in
 * messages). */
sl_status sl_config_parse(const char *path, json_object *root, sl_model_config *c, sl_arch *a, sl_error *err);
/* Merge the eos_token_id of a parsed generation_config.json into c. */
sl_status sl_config_add_generation_eos(const char *path, json_object *root, sl_model_config *c, sl_error *err);

#endif
