// Safe-area insets come from native code; the library's own mock gives fixed insets in tests.
jest.mock('react-native-safe-area-context', () => require('react-native-safe-area-context/jest/mock').default);
