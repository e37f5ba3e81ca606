"""Assistant policies (installed as ``inftool_env.policies``).

Empty until the policies work lands: the OpenAI-compatible endpoint, HF transformers, vLLM, GGUF
and oracle/scripted policies all go here behind one ``Policy`` protocol (see DESIGN.md).
"""
