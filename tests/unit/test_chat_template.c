/*
 * test_chat_template.c: mn_chat_render on the published chat templates of the model families
 * minnow targets (SmolLM2/ChatML, Qwen2.5, Llama 3.2, Llama 2, Mistral v0.3, Phi-3, Gemma 2,
 * DeepSeek-R1/V3), byte for byte.
 *
 * The template strings below are data: each family's tokenizer.chat_template as published with
 * the models (tokenizer_config.json on the Hugging Face hub, which GGUF conversion copies into
 * tokenizer.chat_template). The expected prompts are written by hand from each family's documented
 * prompt format, for one conversation (system, user, assistant, user) with and without
 * add_generation_prompt, plus the family's special cases: default system prompts (SmolLM2,
 * Qwen2.5), the Llama 3 date header (pinned through vars_json and through strftime_now), the
 * Llama 2 <<SYS>> fold, Mistral's system prompt on the last user turn, Gemma's refusal of system
 * roles, DeepSeek's removal of earlier reasoning, Qwen2.5 tool calling. Then the API itself:
 * the ChatML fallback and its warning, parameter validation, budgets and error propagation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "minnow.h"

/* ---------------------------------------------------------------- templates (data) ----------- */

/* SmolLM2 (HuggingFaceTB/SmolLM2-*-Instruct) */
static const char TMPL_SMOLLM2[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n"
    "' + message['content'] + '<|im_end|>' + '\n"
    "'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n"
    "' }}{% endif %}";

/* Qwen2.5-Instruct */
static const char TMPL_QWEN25[] =
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query"
    ".\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>"
    "\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name a"
    "nd arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function"
    "-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpf"
    "ul assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n'"
    " }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n";

/* Llama 3.2 Instruct */
static const char TMPL_LLAMA32[] =
    "{{- bos_token }}\n"
    "{%- if custom_tools is defined %}\n"
    "    {%- set tools = custom_tools %}\n"
    "{%- endif %}\n"
    "{%- if not tools_in_user_message is defined %}\n"
    "    {%- set tools_in_user_message = true %}\n"
    "{%- endif %}\n"
    "{%- if not date_string is defined %}\n"
    "    {%- if strftime_now is defined %}\n"
    "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n"
    "    {%- else %}\n"
    "        {%- set date_string = \"26 Jul 2024\" %}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- if not tools is defined %}\n"
    "    {%- set tools = none %}\n"
    "{%- endif %}\n"
    "\n"
    "{#- This block extracts the system message, so we can slot it into the right place. #}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set system_message = \"\" %}\n"
    "{%- endif %}\n"
    "\n"
    "{#- System message #}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{%- if tools is not none %}\n"
    "    {{- \"Environment: ipython\\n\" }}\n"
    "{%- endif %}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{%- if tools is not none and not tools_in_user_message %}\n"
    "    {{- \"You have access to the following functions. To call a function, please respond "
    "with JSON for a function call.\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argum"
    "ent name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n"
    "    {%- for t in tools %}\n"
    "        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n"
    "    {%- endfor %}\n"
    "{%- endif %}\n"
    "{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n"
    "\n"
    "{#- Custom tools are passed in a user message with some extra guidance #}\n"
    "{%- if tools_in_user_message and not tools is none %}\n"
    "    {#- Extract the first user message so we can plug it in here #}\n"
    "    {%- if messages | length != 0 %}\n"
    "        {%- set first_user_message = messages[0]['content']|trim %}\n"
    "        {%- set messages = messages[1:] %}\n"
    "    {%- else %}\n"
    "        {{- raise_exception(\"Cannot put tools in the first user message when there's no "
    "first user message!\") }}\n"
    "{%- endif %}\n"
    "    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n"
    "    {{- \"Given the following functions, please respond with a JSON for a function call \""
    " }}\n"
    "    {{- \"with its proper arguments that best answers the given prompt.\\n\\n\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argum"
    "ent name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n"
    "    {%- for t in tools %}\n"
    "        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n"
    "    {%- endfor %}\n"
    "    {{- first_user_message + \"<|eot_id|>\"}}\n"
    "{%- endif %}\n"
    "\n"
    "{%- for message in messages %}\n"
    "    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in m"
    "essage) %}\n"
    "        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['"
    "content'] | trim + '<|eot_id|>' }}\n"
    "    {%- elif 'tool_calls' in message %}\n"
    "        {%- if not message.tool_calls|length == 1 %}\n"
    "            {{- raise_exception(\"This model only supports single tool-calls at once!\") }}\n"
    "        {%- endif %}\n"
    "        {%- set tool_call = message.tool_calls[0].function %}\n"
    "        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n"
    "        {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n"
    "        {{- '\"parameters\": ' }}\n"
    "        {{- tool_call.arguments | tojson }}\n"
    "        {{- \"}\" }}\n"
    "        {{- \"<|eot_id|>\" }}\n"
    "    {%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n"
    "        {{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n"
    "        {%- if message.content is mapping or message.content is iterable %}\n"
    "            {{- message.content | tojson }}\n"
    "        {%- else %}\n"
    "            {{- message.content }}\n"
    "        {%- endif %}\n"
    "        {{- \"<|eot_id|>\" }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n";

/* Llama 2 chat */
static const char TMPL_LLAMA2[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...'"
    ") }}{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}";

/* Mistral 7B Instruct v0.3 */
static const char TMPL_MISTRAL03[] =
    "{%- if messages[0][\"role\"] == \"system\" %}\n"
    "    {%- set system_message = messages[0][\"content\"] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "{%- if not tools is defined %}\n"
    "    {%- set tools = none %}\n"
    "{%- endif %}\n"
    "{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n"
    "\n"
    "{#- This block checks for alternating user/assistant messages, skipping tool calling mes"
    "sages #}\n"
    "{%- set ns = namespace() %}\n"
    "{%- set ns.index = 0 %}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or (message.too"
    "l_calls is defined and message.tool_calls is not none)) %}\n"
    "        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n"
    "            {{- raise_exception(\"After the optional system message, conversation roles m"
    "ust alternate user/assistant/user/assistant/...\") }}\n"
    "        {%- endif %}\n"
    "        {%- set ns.index = ns.index + 1 %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if message[\"role\"] == \"user\" %}\n"
    "        {%- if tools is not none and (message == user_messages[-1]) %}\n"
    "            {{- \"[AVAILABLE_TOOLS] [\" }}\n"
    "            {%- for tool in tools %}\n"
    "                {%- set tool = tool.function %}\n"
    "                {{- '{\"type\": \"function\", \"function\": {' }}\n"
    "                {%- for key, val in tool.items() if key != \"return\" %}\n"
    "                    {%- if val is string %}\n"
    "                        {{- '\"' + key + '\": \"' + val + '\"' }}\n"
    "                    {%- else %}\n"
    "                        {{- '\"' + key + '\": ' + val|tojson }}\n"
    "                    {%- endif %}\n"
    "                    {%- if not loop.last %}\n"
    "                        {{- \", \" }}\n"
    "                    {%- endif %}\n"
    "                {%- endfor %}\n"
    "                {{- \"}}\" }}\n"
    "                {%- if not loop.last %}\n"
    "                    {{- \", \" }}\n"
    "                {%- else %}\n"
    "                    {{- \"]\" }}\n"
    "                {%- endif %}\n"
    "            {%- endfor %}\n"
    "            {{- \"[/AVAILABLE_TOOLS]\" }}\n"
    "            {%- endif %}\n"
    "        {%- if loop.last and system_message is defined %}\n"
    "            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n"
    "        {%- else %}\n"
    "            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n"
    "        {%- endif %}\n"
    "    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n"
    "        {{- \"[TOOL_CALLS] [\" }}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- set out = tool_call.function|tojson %}\n"
    "            {{- out[:-1] }}\n"
    "            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n"
    "                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with l"
    "ength 9!\") }}\n"
    "            {%- endif %}\n"
    "            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n"
    "            {%- if not loop.last %}\n"
    "                {{- \", \" }}\n"
    "            {%- else %}\n"
    "                {{- \"]\" + eos_token }}\n"
    "            {%- endif %}\n"
    "        {%- endfor %}\n"
    "    {%- elif message[\"role\"] == \"assistant\" %}\n"
    "        {{- \" \" + message[\"content\"]|trim + eos_token}}\n"
    "    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n"
    "        {%- if message.content is defined and message.content.content is defined %}\n"
    "            {%- set content = message.content.content %}\n"
    "        {%- else %}\n"
    "            {%- set content = message.content %}\n"
    "        {%- endif %}\n"
    "        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n"
    "        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n"
    "            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with lengt"
    "h 9!\") }}\n"
    "        {%- endif %}\n"
    "        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n"
    "    {%- else %}\n"
    "        {{- raise_exception(\"Only user and assistant roles are supported, with the excep"
    "tion of an initial optional system message!\") }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n";

/* Phi-3 mini instruct */
static const char TMPL_PHI3[] =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% elif message['role'] == 'user' %}{{'<|user|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n"
    "' }}{% else %}{{ eos_token }}{% endif %}";

/* Gemma 2 instruct */
static const char TMPL_GEMMA2[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...'"
    ") }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}"
    "{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n"
    "' + message['content'] | trim + '<end_of_turn>\n"
    "' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n"
    "'}}{% endif %}";

/* DeepSeek-R1 (DeepSeek-V3 family) */
static const char TMPL_DEEPSEEK_R1[] =
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}"
    "{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, sy"
    "stem_prompt='', is_first_sp=true) %}{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}"
    "{% set ns.system_prompt = ns.system_prompt + message['content'] %}"
    "{% set ns.is_first_sp = false %}{%- else %}"
    "{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- endif %}"
    "{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}{%- if message['role'] == 'user' %}"
    "{%- set ns.is_tool = false -%}{{'<\xef\xbd\x9cUser\xef\xbd\x9c>' + message['content']}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and 'tool_calls' in message %}"
    "{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls'] %}"
    "{%- if not ns.is_first %}{%- if message['content'] is none %}"
    "{{'<\xef\xbd\x9c""Assistant\xef\xbd\x9c><\xef\xbd\x9ctool\xe2\x96\x81""calls\xe2\x96\x81""begin\xef\xbd\x9c><\xef\xbd\x9ctool\xe2\x96\x81""call\xe2\x96\x81""begin\xef\xbd\x9c>' + tool['type'] + '<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>'"
    " + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + "
    "'\\n' + '```' + '<\xef\xbd\x9ctool\xe2\x96\x81""call\xe2\x96\x81""end\xef\xbd\x9c>'}}{%- else %}"
    "{{'<\xef\xbd\x9c""Assistant\xef\xbd\x9c>' + message['content'] + '<\xef\xbd\x9ctool\xe2\x96\x81""calls\xe2\x96\x81""begin\xef\xbd\x9c><\xef\xbd\x9ctool\xe2\x96\x81""call\xe2\x96\x81""begin\xef\xbd\x9c>' + too"
    "l['type'] + '<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['"
    "function']['arguments'] + '\\n' + '```' + '<\xef\xbd\x9ctool\xe2\x96\x81""call\xe2\x96\x81""end\xef\xbd\x9c>'}}{%- endif %}"
    "{%- set ns.is_first = true -%}{%- else %}"
    "{{'\\n' + '<\xef\xbd\x9ctool\xe2\x96\x81""call\xe2\x96\x81""begin\xef\xbd\x9c>' + tool['type'] + '<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>' + tool['function']['name'"
    "] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<\xef\xbd\x9ctool\xe2\x96\x81""cal"
    "l\xe2\x96\x81""end\xef\xbd\x9c>'}}{%- endif %}{%- endfor %}{{'<\xef\xbd\x9ctool\xe2\x96\x81""calls\xe2\x96\x81""end\xef\xbd\x9c><\xef\xbd\x9c""end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>'}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}"
    "{%- if ns.is_tool %}{{'<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81""end\xef\xbd\x9c>' + message['content'] + '<\xef\xbd\x9c""end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
    "'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}"
    "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<\xef\xbd\x9c""Assistant\xef\xbd\x9c>' + content + '<\xef\xbd\x9c""end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>'}}{%- endif %}{%- endif %}"
    "{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}"
    "{%- if ns.is_output_first %}"
    "{{'<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81""begin\xef\xbd\x9c><\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81""begin\xef\xbd\x9c>' + message['content'] + '<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81""en"
    "d\xef\xbd\x9c>'}}{%- set ns.is_output_first = false %}{%- else %}"
    "{{'<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81""begin\xef\xbd\x9c>' + message['content'] + '<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81""end\xef\xbd\x9c>'}}{%- endif %}"
    "{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81""end\xef\xbd\x9c>'}}{% endif %}"
    "{% if add_generation_prompt and not ns.is_tool %}{{'<\xef\xbd\x9c""Assistant\xef\xbd\x9c><think>\\n'}}{% endif %}";

/* ---------------------------------------------------------------- helpers -------------------- */

static const mn_chat_message CONV[] = {
    {.role = "system", .content = "You are a helpful assistant."},
    {.role = "user", .content = "Hello!"},
    {.role = "assistant", .content = "Hi! How can I help?"},
    {.role = "user", .content = "What is 2+2?"},
};
#define N_CONV (sizeof CONV / sizeof CONV[0])

static void check(const char *tmpl, const mn_chat_message *msgs, size_t n, const mn_chat_params *p, const char *want) {
    char *out = NULL;
    size_t len = 0;
    mn_error err = {0};
    mn_status st = mn_chat_render(tmpl, msgs, n, p, &out, &len, &err);
    if (st != MN_OK) fail_msg("render failed (%d): %s", st, err.message);
    if (strcmp(out, want) != 0) fail_msg("got\n[%s]\nwant\n[%s]", out, want);
    assert_int_equal(len, strlen(want));
    assert_int_equal(err.status, MN_OK);
    free(out);
}

static void check_fails(const char *tmpl, const mn_chat_message *msgs, size_t n, const mn_chat_params *p, mn_status want_st,
                        const char *want_msg) {
    char *out = (char *)"sentinel";
    mn_error err = {0};
    mn_status st = mn_chat_render(tmpl, msgs, n, p, &out, NULL, &err);
    if (st == MN_OK) fail_msg("rendered [%s], wanted an error", out);
    assert_null(out);
    if (st != want_st) fail_msg("status %d, want %d: %s", st, want_st, err.message);
    if (!strstr(err.message, want_msg)) fail_msg("message [%s] lacks [%s]", err.message, want_msg);
}

static mn_chat_params params(int add_generation_prompt, const char *bos, const char *eos) {
    mn_chat_params p = mn_chat_default_params();
    p.add_generation_prompt = add_generation_prompt;
    p.bos_token = bos;
    p.eos_token = eos;
    return p;
}

/* ---------------------------------------------------------------- families ------------------- */

static void test_chatml_smollm2(void **state) {
    (void)state;
    mn_chat_params p = params(1, "<|im_start|>", "<|im_end|>");
    const char *with_system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                              "<|im_start|>user\nHello!<|im_end|>\n"
                              "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n"
                              "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
    char want[1024];
    snprintf(want, sizeof want, "%s<|im_start|>assistant\n", with_system);
    check(TMPL_SMOLLM2, CONV, N_CONV, &p, want);
    p.add_generation_prompt = 0;
    check(TMPL_SMOLLM2, CONV, N_CONV, &p, with_system);
    /* no system message: SmolLM2 supplies its own */
    p.add_generation_prompt = 1;
    check(TMPL_SMOLLM2, CONV + 1, 1, &p,
          "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
          "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
    /* the built-in fallback renders plain ChatML */
    check(NULL, CONV, N_CONV, &p, want);
}

static void test_qwen25(void **state) {
    (void)state;
    mn_chat_params p = params(1, NULL, "<|im_end|>");
    const char *body = "<|im_start|>user\nHello!<|im_end|>\n"
                       "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n"
                       "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
    char want[2048];
    snprintf(want, sizeof want, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n%s<|im_start|>assistant\n", body);
    check(TMPL_QWEN25, CONV, N_CONV, &p, want);
    snprintf(want, sizeof want, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n%s", body);
    p.add_generation_prompt = 0;
    check(TMPL_QWEN25, CONV, N_CONV, &p, want);
    /* no system message: Qwen's default one, and no tools section */
    p.add_generation_prompt = 1;
    snprintf(want, sizeof want,
             "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n%s"
             "<|im_start|>assistant\n",
             body);
    check(TMPL_QWEN25, CONV + 1, N_CONV - 1, &p, want);
}

static void test_qwen25_tools(void **state) {
    (void)state;
    mn_chat_params p = params(1, NULL, "<|im_end|>");
    p.tools_json = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", "
                   "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, "
                   "\"required\": [\"city\"]}}}]";
    const mn_chat_message msgs[] = {
        {.role = "user", .content = "What's the weather in Paris?"},
        {.role = "assistant",
         .content = NULL,
         .tool_calls_json = "[{\"id\": \"call_1\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
                            "\"arguments\": {\"city\": \"Paris\"}}}]"},
        {.role = "tool", .content = "22C and sunny", .tool_call_id = "call_1"},
    };
    check(TMPL_QWEN25, msgs, 3, &p,
          "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
          "You may call one or more functions to assist with the user query.\n\n"
          "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
          "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", "
          "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}\n"
          "</tools>\n\nFor each function call, return a json object with function name and arguments within "
          "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
          "</tool_call><|im_end|>\n"
          "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
          "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
          "<|im_start|>user\n<tool_response>\n22C and sunny\n</tool_response><|im_end|>\n"
          "<|im_start|>assistant\n");
}

static void test_llama32(void **state) {
    (void)state;
    mn_chat_params p = params(1, "<|begin_of_text|>", "<|eot_id|>");
    p.vars_json = "{\"date_string\": \"26 Jul 2024\"}";
    const char *body = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                       "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                       "You are a helpful assistant.<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
                       "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>";
    char want[2048];
    snprintf(want, sizeof want, "%s<|start_header_id|>assistant<|end_header_id|>\n\n", body);
    check(TMPL_LLAMA32, CONV, N_CONV, &p, want);
    p.add_generation_prompt = 0;
    check(TMPL_LLAMA32, CONV, N_CONV, &p, body);
    /* without date_string the template asks strftime_now("%d %b %Y"): pin the clock instead
     * (12:00 UTC, so the local date is the same in every time zone within 11 hours of UTC) */
    p.vars_json = NULL;
    p.now = 1721995200; /* 2024-07-26 12:00:00 UTC */
    check(TMPL_LLAMA32, CONV, N_CONV, &p, body);
    /* no system message: the header still appears, with an empty system text */
    p.add_generation_prompt = 1;
    check(TMPL_LLAMA32, CONV + 1, 1, &p,
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
          "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void test_llama2(void **state) {
    (void)state;
    mn_chat_params p = params(1, "<s>", "</s>");
    /* the system prompt is folded into the first user turn; the template has no generation
     * prompt, so add_generation_prompt changes nothing */
    const char *want = "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST] Hi! How can I help? </s>"
                       "<s>[INST] What is 2+2? [/INST]";
    check(TMPL_LLAMA2, CONV, N_CONV, &p, want);
    p.add_generation_prompt = 0;
    check(TMPL_LLAMA2, CONV, N_CONV, &p, want);
    check(TMPL_LLAMA2, CONV + 1, N_CONV - 1, &p, "<s>[INST] Hello! [/INST] Hi! How can I help? </s><s>[INST] What is 2+2? [/INST]");
    /* content is stripped */
    const mn_chat_message padded[] = {{.role = "user", .content = "  spaced  "}};
    check(TMPL_LLAMA2, padded, 1, &p, "<s>[INST] spaced [/INST]");
    const mn_chat_message bad[] = {{.role = "user", .content = "a"}, {.role = "user", .content = "b"}};
    check_fails(TMPL_LLAMA2, bad, 2, &p, MN_EINVAL, "Conversation roles must alternate user/assistant/user/assistant/...");
}

static void test_mistral_v03(void **state) {
    (void)state;
    mn_chat_params p = params(1, "<s>", "</s>");
    /* v3 tokenizer format; the system prompt goes before the last user message */
    check(TMPL_MISTRAL03, CONV, N_CONV, &p,
          "<s>[INST] Hello![/INST] Hi! How can I help?</s>[INST] You are a helpful assistant.\n\nWhat is 2+2?[/INST]");
    p.add_generation_prompt = 0;
    check(TMPL_MISTRAL03, CONV + 1, N_CONV - 1, &p, "<s>[INST] Hello![/INST] Hi! How can I help?</s>[INST] What is 2+2?[/INST]");
    const mn_chat_message bad[] = {{.role = "system", .content = "s"}, {.role = "assistant", .content = "a"}};
    check_fails(TMPL_MISTRAL03, bad, 2, &p, MN_EINVAL,
                "raise_exception: After the optional system message, conversation roles must alternate");
}

static void test_phi3(void **state) {
    (void)state;
    mn_chat_params p = params(1, "<s>", "<|endoftext|>");
    const char *body = "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n"
                       "<|assistant|>\nHi! How can I help?<|end|>\n<|user|>\nWhat is 2+2?<|end|>\n";
    char want[1024];
    snprintf(want, sizeof want, "%s<|assistant|>\n", body);
    check(TMPL_PHI3, CONV, N_CONV, &p, want);
    /* without a generation prompt the template ends with the EOS token */
    p.add_generation_prompt = 0;
    snprintf(want, sizeof want, "%s<|endoftext|>", body);
    check(TMPL_PHI3, CONV, N_CONV, &p, want);
}

static void test_gemma2(void **state) {
    (void)state;
    mn_chat_params p = params(1, "<bos>", "<eos>");
    const char *body = "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi! How can I help?<end_of_turn>\n"
                       "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n";
    char want[1024];
    snprintf(want, sizeof want, "%s<start_of_turn>model\n", body);
    check(TMPL_GEMMA2, CONV + 1, N_CONV - 1, &p, want);
    p.add_generation_prompt = 0;
    check(TMPL_GEMMA2, CONV + 1, N_CONV - 1, &p, body);
    /* Gemma 2 has no system role, and roles must alternate */
    check_fails(TMPL_GEMMA2, CONV, N_CONV, &p, MN_EINVAL, "raise_exception: System role not supported");
    const mn_chat_message bad[] = {{.role = "user", .content = "a"}, {.role = "user", .content = "b"}};
    check_fails(TMPL_GEMMA2, bad, 2, &p, MN_EINVAL, "Conversation roles must alternate");
}

#define DS_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"

static void test_deepseek(void **state) {
    (void)state;
    mn_chat_params p = params(1, DS_BOS, DS_EOS);
    const char *body = DS_BOS "You are a helpful assistant." DS_USER "Hello!" DS_ASSISTANT "Hi! How can I help?" DS_EOS DS_USER
                              "What is 2+2?";
    char want[1024];
    snprintf(want, sizeof want, "%s" DS_ASSISTANT "<think>\n", body);
    check(TMPL_DEEPSEEK_R1, CONV, N_CONV, &p, want);
    p.add_generation_prompt = 0;
    check(TMPL_DEEPSEEK_R1, CONV, N_CONV, &p, body);
    /* the reasoning of earlier assistant turns is dropped (everything up to </think>) */
    const mn_chat_message thought[] = {
        {.role = "user", .content = "Hi"},
        {.role = "assistant", .content = "<think>\nhmm\n</think>\n\nHello."},
        {.role = "user", .content = "And?"},
    };
    p.add_generation_prompt = 1;
    check(TMPL_DEEPSEEK_R1, thought, 3, &p,
          DS_BOS DS_USER "Hi" DS_ASSISTANT "\n\nHello." DS_EOS DS_USER "And?" DS_ASSISTANT "<think>\n");
}

/* ---------------------------------------------------------------- API ------------------------ */

static void test_fallback_and_reuse(void **state) {
    (void)state;
    mn_chat_template *t = NULL;
    mn_error err = {0};
    assert_int_equal(mn_chat_template_create(NULL, &t, &err), MN_OK);
    assert_int_equal(err.status, MN_OK);
    assert_non_null(strstr(err.message, "no chat template; using ChatML"));
    assert_true(mn_chat_template_is_fallback(t));
    char *out = NULL;
    /* params NULL: defaults, with the generation prompt */
    assert_int_equal(mn_chat_template_render(t, CONV + 1, 1, NULL, &out, NULL, &err), MN_OK);
    assert_string_equal(out, "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
    assert_non_null(strstr(err.message, "using ChatML")); /* the warning is repeated on render */
    free(out);
    mn_chat_template_free(t);

    /* "" is "no template" too; a real template gives no warning */
    assert_int_equal(mn_chat_template_create("", &t, &err), MN_OK);
    assert_true(mn_chat_template_is_fallback(t));
    mn_chat_template_free(t);
    assert_int_equal(mn_chat_template_create(TMPL_PHI3, &t, &err), MN_OK);
    assert_false(mn_chat_template_is_fallback(t));
    assert_string_equal(err.message, "");
    /* one parsed template, many renders */
    for (size_t n = 1; n <= N_CONV; n++) {
        assert_int_equal(mn_chat_template_render(t, CONV, n, NULL, &out, NULL, NULL), MN_OK);
        assert_non_null(strstr(out, "<|assistant|>\n"));
        free(out);
    }
    /* no messages at all */
    assert_int_equal(mn_chat_template_render(t, NULL, 0, NULL, &out, NULL, NULL), MN_OK);
    assert_string_equal(out, "<|assistant|>\n");
    free(out);
    mn_chat_template_free(t);
    mn_chat_template_free(NULL);
    /* the fallback is the published ChatML template, usable explicitly (then without a warning) */
    assert_int_equal(mn_chat_template_create(mn_chat_template_chatml(), &t, &err), MN_OK);
    assert_false(mn_chat_template_is_fallback(t));
    assert_string_equal(err.message, "");
    assert_int_equal(mn_chat_template_render(t, CONV, 2, NULL, &out, NULL, &err), MN_OK);
    assert_string_equal(out, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                             "<|im_start|>assistant\n");
    free(out);
    mn_chat_template_free(t);
}

static void test_message_fields(void **state) {
    (void)state;
    /* optional fields appear only when set; content NULL is none */
    const char *tmpl = "{% for m in messages %}{{ m.role }}:{{ m.content is none }}:{{ 'name' in m }}:{{ m.name }}:"
                       "{{ m.tool_call_id }}:{{ m.reasoning_content }}:{{ m.tool_calls|length }};{% endfor %}"
                       "{{ tools is none }}{{ documents is none }}{{ bos_token }}|{{ eos_token }}|{{ extra }}";
    const mn_chat_message msgs[] = {
        {.role = "assistant", .content = NULL, .tool_calls_json = "[{\"a\": 1}, {\"b\": 2}]", .reasoning_content = "r"},
        {.role = "tool", .content = "x", .tool_call_id = "id9", .name = "fn"},
    };
    mn_chat_params p = params(1, NULL, NULL);
    p.vars_json = "{\"extra\": [1, 2.5, \"s\"], \"eos_token\": \"E\"}";
    check(tmpl, msgs, 2, &p, "assistant:True:False:::r:2;tool:False:True:fn:id9::0;TrueTrue|E|[1, 2.5, 's']");
}

static void test_bad_arguments(void **state) {
    (void)state;
    mn_chat_params p = mn_chat_default_params();
    check_fails("x", NULL, 2, &p, MN_EINVAL, "msgs is NULL");
    const mn_chat_message no_role[] = {{.role = "user", .content = "a"}, {.content = "b"}};
    check_fails("x", no_role, 2, &p, MN_EINVAL, "messages[1].role is NULL");
    const mn_chat_message bad_json[] = {{.role = "assistant", .tool_calls_json = "[{\"a\": }]"}};
    check_fails("x", bad_json, 1, &p, MN_EINVAL, "messages[0].tool_calls_json is not valid JSON");
    const mn_chat_message not_array[] = {{.role = "assistant", .tool_calls_json = "{}"}};
    check_fails("x", not_array, 1, &p, MN_EINVAL, "must be a JSON array");
    p.vars_json = "[1]";
    check_fails("x", CONV, 1, &p, MN_EINVAL, "vars_json must be a JSON object");
    p.vars_json = NULL;
    p.tools_json = "nope";
    check_fails("x", CONV, 1, &p, MN_EINVAL, "tools_json is not valid JSON");
    char *out = NULL;
    assert_int_equal(mn_chat_render("x", CONV, 1, NULL, NULL, NULL, NULL), MN_EINVAL);
    assert_int_equal(mn_chat_template_render(NULL, CONV, 1, NULL, &out, NULL, NULL), MN_EINVAL);
    assert_null(out);
}

static void test_template_errors(void **state) {
    (void)state;
    mn_chat_params p = mn_chat_default_params();
    /* syntax errors name the line and column, at create time */
    mn_chat_template *t = (mn_chat_template *)&p;
    mn_error err = {0};
    assert_int_equal(mn_chat_template_create("{% for m in messages %}\n{{ m.role | nope }}", &t, &err), MN_EINVAL);
    assert_null(t);
    assert_string_equal(err.message, "chat template: line 2, column 13: unknown filter 'nope'");
    check_fails("{% if x %}", CONV, 1, &p, MN_EINVAL, "needs 'endif'");
    check_fails("{{ messages[0].content.nope() }}", CONV, 1, &p, MN_EUNSUPPORTED, "has no method 'nope'");
    /* budgets come from the params */
    p.n_steps_max = 500;
    check_fails("{% for i in range(1000) %}{{ i }}{% endfor %}", CONV, 1, &p, MN_EFULL, "step budget exhausted");
    p = mn_chat_default_params();
    p.out_bytes_max = 100;
    check_fails("{{ 'x' * 101 }}", CONV, 1, &p, MN_ETOOBIG, "output limit");
    p = mn_chat_default_params();
    p.depth_max = 20;
    check_fails("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", CONV, 1, &p, MN_EFULL, "nested too deeply");
    p = mn_chat_default_params();
    p.mem_bytes_max = 1 << 20;
    check_fails("{% set ns = namespace(s='') %}{% for i in range(2000) %}{% set ns.s = ns.s ~ 'x' * 1000 %}{% endfor %}", CONV,
                1, &p, MN_EFULL, "memory budget exhausted");
    /* a zero-initialised params struct means the default budgets (and no generation prompt) */
    mn_chat_params zero;
    memset(&zero, 0, sizeof zero);
    check(NULL, CONV + 1, 1, &zero, "<|im_start|>user\nHello!<|im_end|>\n");
    /* templates longer than the limit are refused */
    size_t big = MN_CHAT_TEMPLATE_BYTES_MAX + 1;
    char *src = malloc(big + 1);
    assert_non_null(src);
    memset(src, 'a', big);
    src[big] = '\0';
    assert_int_equal(mn_chat_template_create(src, &t, &err), MN_ETOOBIG);
    free(src);
}

static void test_long_conversation(void **state) {
    (void)state;
    /* 2000 messages through a real template stay well inside the default budgets */
    size_t n = 2000;
    mn_chat_message *msgs = calloc(n, sizeof *msgs);
    assert_non_null(msgs);
    for (size_t i = 0; i < n; i++) {
        msgs[i].role = i % 2 ? "assistant" : "user";
        msgs[i].content = "Some words of a message, repeated to make a long conversation.";
    }
    mn_chat_params p = params(1, NULL, NULL);
    char *out = NULL;
    size_t len = 0;
    mn_error err = {0};
    assert_int_equal(mn_chat_render(TMPL_QWEN25, msgs, n, &p, &out, &len, &err), MN_OK);
    size_t per = strlen("<|im_start|>user\n<|im_end|>\n") + strlen(msgs[0].content);
    /* the default system block + every message (assistant is 5 bytes longer than user) + prompt */
    size_t want = strlen("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n") +
                  n * per + (n / 2) * 5 + strlen("<|im_start|>assistant\n");
    assert_int_equal(len, want);
    free(out);
    free(msgs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chatml_smollm2),
        cmocka_unit_test(test_qwen25),
        cmocka_unit_test(test_qwen25_tools),
        cmocka_unit_test(test_llama32),
        cmocka_unit_test(test_llama2),
        cmocka_unit_test(test_mistral_v03),
        cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_gemma2),
        cmocka_unit_test(test_deepseek),
        cmocka_unit_test(test_fallback_and_reuse),
        cmocka_unit_test(test_message_fields),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_template_errors),
        cmocka_unit_test(test_long_conversation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
