/* slua — the public C API. Include this one header; it never includes lua.h.
 * Sections: basics (sl_base.h), models and sessions with their copies and branches
 * (sl_model.h), logits ops, processors, warpers and sampling (sl_ops.h), tokenizers
 * (sl_tokenizer.h), teacher-forced scores (sl_eval.h), activation interventions and captures
 * (sl_intervene.h). */
#ifndef SLUA_SL_H
#define SLUA_SL_H

#include "slua/sl_base.h"
#include "slua/sl_eval.h"
#include "slua/sl_intervene.h"
#include "slua/sl_model.h"
#include "slua/sl_ops.h"
#include "slua/sl_tokenizer.h"

#endif
