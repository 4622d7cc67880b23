#pragma once
// The vswitch.ovsschema (OVS 3.1, schema 8.3.1) columns ovsctl monitors, for hermetic unit tests.
// Generated from /usr/share/openvswitch/vswitch.ovsschema (types only).
#include <nlohmann/json.hpp>

namespace nc::ovsctl::test {

inline nlohmann::json miniSchema() {
  auto schema = nlohmann::json::parse(
      R"({"name":"Open_vSwitch","version":"8.3.1","tables":{"Open_vSwitch":{"columns":{"bridges":{")"
      R"(type":{"key":{"type":"uuid","refTable":"Bridge"},"min":0,"max":"unlimited"}},"cur_cfg":{"t)"
      R"(ype":"integer"},"next_cfg":{"type":"integer"}}},"Bridge":{"columns":{"name":{"type":"strin)"
      R"(g"},"sflow":{"type":{"key":{"type":"uuid","refTable":"sFlow"},"min":0,"max":1}},"ipfix":{")"
      R"(type":{"key":{"type":"uuid","refTable":"IPFIX"},"min":0,"max":1}},"netflow":{"type":{"key")"
      R"(:{"type":"uuid","refTable":"NetFlow"},"min":0,"max":1}},"ports":{"type":{"key":{"type":"uu)"
      R"(id","refTable":"Port"},"min":0,"max":"unlimited"}},"datapath_type":{"type":"string"},"exte)"
      R"(rnal_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},"Port":{")"
      R"(columns":{"name":{"type":"string"},"interfaces":{"type":{"key":{"type":"uuid","refTable":")"
      R"(Interface"},"min":1,"max":"unlimited"}}}},"Interface":{"columns":{"name":{"type":"string"})"
      R"(,"type":{"type":"string"},"ofport":{"type":{"key":"integer","min":0,"max":1}},"ifindex":{")"
      R"(type":{"key":{"type":"integer","minInteger":0,"maxInteger":4294967295},"min":0,"max":1}},")"
      R"(external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},"sFlo)"
      R"(w":{"columns":{"targets":{"type":{"key":"string","min":1,"max":"unlimited"}},"sampling":{")"
      R"(type":{"key":"integer","min":0,"max":1}},"polling":{"type":{"key":"integer","min":0,"max":)"
      R"(1}},"header":{"type":{"key":"integer","min":0,"max":1}},"agent":{"type":{"key":"string","m)"
      R"(in":0,"max":1}},"external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unl)"
      R"(imited"}}}},"IPFIX":{"columns":{"targets":{"type":{"key":"string","min":0,"max":"unlimited)"
      R"("}},"sampling":{"type":{"key":{"type":"integer","minInteger":1,"maxInteger":4294967295},"m)"
      R"(in":0,"max":1}},"obs_domain_id":{"type":{"key":{"type":"integer","minInteger":0,"maxIntege)"
      R"(r":4294967295},"min":0,"max":1}},"obs_point_id":{"type":{"key":{"type":"integer","minInteg)"
      R"(er":0,"maxInteger":4294967295},"min":0,"max":1}},"cache_active_timeout":{"type":{"key":{"t)"
      R"(ype":"integer","minInteger":0,"maxInteger":4200},"min":0,"max":1}},"cache_max_flows":{"typ)"
      R"(e":{"key":{"type":"integer","minInteger":0,"maxInteger":4294967295},"min":0,"max":1}},"oth)"
      R"(er_config":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},"external_)"
      R"(ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},"NetFlow":{"co)"
      R"(lumns":{"targets":{"type":{"key":{"type":"string"},"min":1,"max":"unlimited"}},"active_tim)"
      R"(eout":{"type":{"key":{"type":"integer","minInteger":-1}}},"engine_type":{"type":{"key":{"t)"
      R"(ype":"integer","minInteger":0,"maxInteger":255},"min":0,"max":1}},"engine_id":{"type":{"ke)"
      R"(y":{"type":"integer","minInteger":0,"maxInteger":255},"min":0,"max":1}},"add_id_to_interfa)"
      R"(ce":{"type":"boolean"},"external_ids":{"type":{"key":"string","value":"string","min":0,"ma)"
      R"(x":"unlimited"}}}}}})");
  schema["tables"]["Flow_Sample_Collector_Set"] = nlohmann::json::parse(
      R"({"columns":{"id":{"type":{"key":{"type":"integer","minInteger":0,"maxInteger":4294967295},)"
      R"("min":1,"max":1}},"bridge":{"type":{"key":{"type":"uuid","refTable":"Bridge"},"min":1,"max)"
      R"(":1}},"ipfix":{"type":{"key":{"type":"uuid","refTable":"IPFIX"},"min":0,"max":1}},"externa)"
      R"(l_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}},"isRoot":true)"
      R"(,"indexes":[["id","bridge"]]})");
  return schema;
}

}  // namespace nc::ovsctl::test
