# cql wire codec (pure, no I/O): frames, values, results, lz4, tokens, shards.
foreach(t frame response types token)
  ms_add_test(test_cql_${t} SOURCES unit/test_cql_${t}.c LIBS msgstore_cql LABELS unit)
endforeach()
