"""The model-folder layer every stage reads and writes through: file names, the safetensors
header reader, atomic writers and readers, hashing, and what a folder's own files say."""
