public enum GatehouseCoreVersion { public static let string = "0.1.0" }
